"""Reading the synthesized template: functions by their route-table name, a role's statements."""

from __future__ import annotations

import json
from typing import Any

from apranova import routes

# Functions the stack deploys besides the route table's.
EXTRA_FUNCTIONS = ("migrate",)


def function_ids(template) -> dict[str, str]:
    """Function name (as the route table names it) → logical id of its AWS::Lambda::Function.

    A function is recognised by the handler the route table gives it; a handler of ours
    (``functions.…``) that no function name maps to fails here.
    """
    by_handler = {
        f"{routes.handler_module(name)}.lambda_handler": name for name in [*routes.functions(), *EXTRA_FUNCTIONS]
    }
    found = {}
    for logical_id, resource in template.find_resources("AWS::Lambda::Function").items():
        handler = resource["Properties"].get("Handler", "")
        if handler.startswith("functions."):
            assert handler in by_handler, f"{logical_id} has a handler no function owns: {handler}"
            found[by_handler[handler]] = logical_id
    return found


def function_props(template, name: str) -> dict[str, Any]:
    return template.find_resources("AWS::Lambda::Function")[function_ids(template)[name]]["Properties"]


def flatten(value: Any) -> Any:
    """An ARN built with ``Fn::Join`` as one string: ``{"Ref": "AWS::Region"}`` → ``<AWS::Region>``,
    ``{"Fn::GetAtt": [id, "Arn"]}`` → ``<id.Arn>`` (cdk-nag's notation); lists item by item."""
    if isinstance(value, list):
        return [flatten(v) for v in value]
    if isinstance(value, dict):
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            flat = [flatten(part) for part in parts]
            # Other intrinsics (Fn::Select of an Fn::Split, ...) stay visible as their JSON.
            return separator.join(p if isinstance(p, str) else json.dumps(p, sort_keys=True) for p in flat)
        if "Ref" in value:
            return f"<{value['Ref']}>"
        if "Fn::GetAtt" in value:
            return "<{}.{}>".format(*value["Fn::GetAtt"])
        return {key: flatten(v) for key, v in value.items()}
    return value


def role_statements(template, name: str) -> list[dict[str, Any]]:
    """Every statement of the policies attached to function ``name``'s role, flattened, with
    ``Action`` and ``Resource`` always as sorted lists."""
    role_id = function_props(template, name)["Role"]["Fn::GetAtt"][0]
    statements = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            flat = flatten(statement)
            for key in ("Action", "Resource"):
                flat[key] = sorted(flat[key] if isinstance(flat[key], list) else [flat[key]])
            statements.append(flat)
    return statements


def statements_with(statements: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """The statements granting any action that starts with ``prefix`` (e.g. ``ssm:``)."""
    return [s for s in statements if any(action.startswith(prefix) for action in s["Action"])]
