"""The function inventory (layers/common/python/apranova/inventory.py) is the truth about every
Lambda function: a handler in code without a row, a row without a handler, or a synthesized function
whose limits, network or role differ from its row fails here."""

from __future__ import annotations

import ast
import collections
from pathlib import Path

from apranova import inventory, routes
from apranova.inventory import Network, Trigger
from functions.provision import catalog
from local import server
from tests.infra.stack_support import resources

ROOT = Path(__file__).resolve().parents[2]


def _handler_modules_in_code() -> set[str]:
    """Every module under functions/ that defines ``lambda_handler`` at its top level."""
    found = set()
    for path in (ROOT / "functions").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            names = (
                [node.name]
                if isinstance(node, ast.FunctionDef)
                else [t.id for t in node.targets if isinstance(t, ast.Name)]
                if isinstance(node, ast.Assign)
                else []
            )
            if "lambda_handler" in names:
                found.add(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return found


def test_every_handler_in_code_has_a_row_and_every_row_a_handler() -> None:
    rows = {f.handler for f in inventory.FUNCTIONS}
    code = _handler_modules_in_code()
    assert code - rows == set(), "handlers without an inventory row"
    assert rows - code == set(), "inventory rows without a handler"
    assert len(inventory.BY_NAME) == len(inventory.FUNCTIONS), "two rows with one name"


def test_the_route_functions_are_the_route_rows() -> None:
    assert {f.name for f in inventory.of(Trigger.ROUTE)} == set(routes.functions())
    for name in routes.functions():
        assert inventory.get(name).handler == routes.handler_module(name)


def test_the_workflow_steps_and_the_local_jobs_are_read_from_the_inventory() -> None:
    assert catalog.STEP_FUNCTIONS == {f.name: f.handler for f in inventory.of(Trigger.STEP)}
    assert set(catalog.TOOL_STEPS.values()) <= set(catalog.STEP_FUNCTIONS)
    scheduled = {f.name for f in inventory.of(Trigger.SCHEDULE)}
    assert {job.name for job in inventory.local_jobs().values()} == scheduled, "a schedule the local stack cannot run"
    assert server.SCHEDULED_JOBS == {name: (f.name, f.handler) for name, f in inventory.local_jobs().items()}
    for function in inventory.FUNCTIONS:
        assert (function.schedule is not None) == (function.trigger is Trigger.SCHEDULE), function.name


def _function_name(props: dict) -> str:
    return props["Handler"].removesuffix(".lambda_handler")


def _role_actions(template) -> dict[str, set[str]]:
    by_role: dict[str, set[str]] = collections.defaultdict(set)
    for policy in resources(template, "AWS::IAM::Policy").values():
        for role in policy["Properties"].get("Roles", []):
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"]
                by_role[role["Ref"]].update([actions] if isinstance(actions, str) else actions)
    return by_role


def _subnet_groups(template) -> dict[str, str]:
    groups = {}
    for logical_id, subnet in resources(template, "AWS::EC2::Subnet").items():
        for tag in subnet["Properties"]["Tags"]:
            if tag["Key"] == "aws-cdk:subnet-name":
                groups[logical_id] = tag["Value"]
    return groups


def test_every_synthesized_function_is_its_row(template) -> None:
    """Timeout, memory, reserved concurrency (literal values: removing the webhook's reservation
    fails here), the network placement and exactly the AWS actions the row lists."""
    by_handler = {f.handler: f for f in inventory.FUNCTIONS}
    role_actions = _role_actions(template)
    subnet_groups = _subnet_groups(template)
    deployed = set()
    for function in resources(template, "AWS::Lambda::Function").values():
        props = function["Properties"]
        if not props.get("Handler", "").startswith("functions."):
            continue  # CDK's own custom resources
        row = by_handler[_function_name(props)]
        deployed.add(row.name)
        assert props["Timeout"] == row.timeout_s, row.name
        assert props["MemorySize"] == row.memory_mb, row.name
        assert props.get("ReservedConcurrentExecutions") == row.reserved_concurrency, row.name
        if row.network is Network.OUTSIDE:
            assert "VpcConfig" not in props, row.name
        else:
            placed = {subnet_groups[s["Ref"]] for s in props["VpcConfig"]["SubnetIds"]}
            assert placed == {"functions" if row.network is Network.EGRESS else "internal"}, row.name
        role = props["Role"]["Fn::GetAtt"][0]
        assert role_actions[role] == set(row.role_actions), row.name
    assert deployed == set(inventory.BY_NAME)


def test_the_pinned_reservations() -> None:
    """Literal values, so that a row's reservation cannot silently go."""
    reserved = {f.name: f.reserved_concurrency for f in inventory.FUNCTIONS if f.reserved_concurrency is not None}
    assert reserved == {
        "payments-webhook": 20,
        "provision-student-database": 5,
        "provision-superset": 5,
        "provision-prefect": 5,
        "provision-jupyter": 5,
        "payments-reconcile": 1,
        "workspace-idle-stopper": 1,
        "compliance-purge": 1,
        "compliance-retention": 1,
        "migrate": 1,
    }


def test_every_scheduled_row_has_its_schedule(template) -> None:
    functions = {
        logical_id: _function_name(function["Properties"])
        for logical_id, function in resources(template, "AWS::Lambda::Function").items()
        if function["Properties"].get("Handler", "").startswith("functions.")
    }
    schedules = {}
    for schedule in resources(template, "AWS::Scheduler::Schedule").values():
        arn = schedule["Properties"]["Target"]["Arn"]
        target = arn["Fn::GetAtt"][0] if isinstance(arn, dict) and "Fn::GetAtt" in arn else None
        schedules[functions.get(target)] = schedule["Properties"]["ScheduleExpression"]
    for row in inventory.of(Trigger.SCHEDULE):
        assert schedules.get(row.handler) == row.schedule, row.name
