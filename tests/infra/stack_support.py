"""Reading the synthesized template: functions by name, a role's statements, flattened ARNs."""

from __future__ import annotations

import json
from typing import Any

from apranova import inventory, routes
from apranova.inventory import Trigger
from cdk.constructs.email import SANDBOX_SID

# Functions the stack deploys besides the route table's, by name → handler module: the migration,
# the workflow steps, the scheduled functions and the GDPR jobs (apranova/inventory.py).
EXTRA_FUNCTIONS: dict[str, str] = {f.name: f.handler for f in inventory.FUNCTIONS if f.trigger is not Trigger.ROUTE}


_RESOURCES: dict[int, tuple[Any, dict[str, dict[str, Any]]]] = {}


def resources(template, type_: str) -> dict[str, dict[str, Any]]:
    """``template.find_resources(type_)`` from one JSON copy of the template (each jsii call costs)."""
    key = id(template)
    if key not in _RESOURCES or _RESOURCES[key][0] is not template:
        _RESOURCES[key] = (template, template.to_json()["Resources"])
    return {i: r for i, r in _RESOURCES[key][1].items() if r["Type"] == type_}


def handler_modules() -> dict[str, str]:
    """Every function the stack deploys, by name → the module whose ``lambda_handler`` it runs."""
    return {**{name: routes.handler_module(name) for name in routes.functions()}, **EXTRA_FUNCTIONS}


def function_ids(template) -> dict[str, str]:
    """Function name (as the route table, the step catalog or the stack names it) → logical id of its
    AWS::Lambda::Function.

    A function is recognised by its handler; a handler of ours (``functions.…``) that no function
    name maps to fails here.
    """
    by_handler = {f"{module}.lambda_handler": name for name, module in handler_modules().items()}
    found = {}
    for logical_id, resource in resources(template, "AWS::Lambda::Function").items():
        handler = resource["Properties"].get("Handler", "")
        if handler.startswith("functions."):
            assert handler in by_handler, f"{logical_id} has a handler no function owns: {handler}"
            found[by_handler[handler]] = logical_id
    return found


def function_props(template, name: str) -> dict[str, Any]:
    return resources(template, "AWS::Lambda::Function")[function_ids(template)[name]]["Properties"]


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
    return role_statements_by_id(template, function_props(template, name)["Role"]["Fn::GetAtt"][0])


def statements_with(statements: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """The statements granting any action that starts with ``prefix`` (e.g. ``ssm:``)."""
    return [s for s in statements if any(action.startswith(prefix) for action in s["Action"])]


def role_statements_by_id(template, role_id: str, *, sandbox: bool = False) -> list[dict[str, Any]]:
    """``role_statements`` for a role given by its logical id (a state machine's, a task role).

    Without ``sandbox``, leaves out the SES sandbox statement every sender has outside production
    (``Email.grant_send``; tests/infra/test_fidelity.py checks it), so the grant tests read the same in
    every stage."""
    statements = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Sid") == SANDBOX_SID and not sandbox:
                continue
            flat = flatten(statement)
            for key in ("Action", "Resource"):
                flat[key] = sorted(flat[key] if isinstance(flat[key], list) else [flat[key]])
            statements.append(flat)
    return statements


def env(template, name: str) -> dict[str, Any]:
    return function_props(template, name)["Environment"]["Variables"]


class StudentsServer:
    """Where a synthesized stage puts the students' databases: the template holding the instance
    (the students' nested stack, or the main one when the stage shares the application's), and how
    the main template's functions name its endpoint and master secret."""

    def __init__(self, stack, template) -> None:
        from aws_cdk.assertions import Template

        self.main = template
        self.dedicated = stack.students_database is not None
        self.template = Template.from_stack(stack.students_database) if self.dedicated else template
        instances = resources(self.template, "AWS::RDS::DBInstance")
        if self.dedicated:
            ((self.instance_id, self.instance),) = instances.items()
        else:
            ((self.instance_id, self.instance),) = [(i, r) for i, r in instances.items() if i.startswith("Database")]
        ((self.attachment_id, _),) = resources(self.template, "AWS::SecretsManager::SecretTargetAttachment").items()
        local_host = {"Fn::GetAtt": [self.instance_id, "Endpoint.Address"]}
        local_secret = {"Ref": self.attachment_id}
        self.host, self.secret = (
            (self._outer(local_host), self._outer(local_secret))
            if self.dedicated
            else (
                local_host,
                local_secret,
            )
        )

    def _outer(self, value) -> dict:
        """A value of the nested template as the main template reads it (the nested stack's output)."""
        outputs = self.template.to_json()["Outputs"]
        (name,) = [n for n, o in outputs.items() if o["Value"] == value]
        (nested,) = [i for i in resources(self.main, "AWS::CloudFormation::Stack") if i.startswith("StudentsDatabase")]
        return {"Fn::GetAtt": [nested, f"Outputs.{name}"]}

    def security_group(self) -> str:
        ((group,),) = [[g["Fn::GetAtt"][0] for g in self.instance["Properties"]["VPCSecurityGroups"]]]
        return group

    def sources(self) -> set[str]:
        """What the instance's security group lets in, as the main template names the groups: a
        logical id in the same template, else the main template's group behind the nested parameter."""
        group = {"Fn::GetAtt": [self.security_group(), "GroupId"]}
        parameters = {}
        if self.dedicated:
            (nested,) = [
                r
                for i, r in resources(self.main, "AWS::CloudFormation::Stack").items()
                if i.startswith("StudentsDatabase")
            ]
            parameters = nested["Properties"].get("Parameters", {})
        found = set()
        for rule in resources(self.template, "AWS::EC2::SecurityGroupIngress").values():
            if rule["Properties"]["GroupId"] != group:
                continue
            source = rule["Properties"]["SourceSecurityGroupId"]
            if "Ref" in source and source["Ref"] in parameters:
                source = parameters[source["Ref"]]
            found.add(source["Fn::GetAtt"][0])
        return found
