"""The enrollment and deprovision state machines as synthesized: Standard, logged and traced, every
task a ``lambda:invoke`` of one step function (no SDK integration: moto cannot run those, docs/principles.md §6),
retried by the transient errors' names, failures caught into RecordProvisioningFailure, and roles
that may invoke exactly their step functions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from apranova.workflow_inputs import STATE_FIELDS
from functions.provision.catalog import (
    DATABASE_CONNECTION_LOST,
    DATABASE_CONTENTION,
    DP_TOOLS,
    FSD_TOOLS,
    LAMBDA_SERVICE_ERRORS,
    STEP_FUNCTIONS,
    TOOL_STEPS,
    TRANSIENT_ERRORS,
)
from tests.infra.stack_support import function_ids, role_statements_by_id

MACHINES = {"enrollment": "WorkflowsEnrollment", "deprovision": "WorkflowsDeprovision"}
# Step Functions' own needs on '*': tracing, and delivering its logs (the delivery API has no ARN).
UNSCOPED = {
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
}


def _machine(template, workflow: str) -> tuple[str, dict[str, Any]]:
    machines = template.find_resources("AWS::StepFunctions::StateMachine")
    ((logical_id, machine),) = [(i, m) for i, m in machines.items() if i.startswith(MACHINES[workflow])]
    return logical_id, machine


def _definition(machine: dict[str, Any]) -> dict[str, Any]:
    """The definition with each ``Fn::GetAtt [<id>, Arn]`` written ``<id.Arn>``: anything else in the
    ``Fn::Join`` (another intrinsic) fails here, as it would in the workflow tests."""
    body = machine["Properties"]["DefinitionString"]
    if isinstance(body, str):
        return json.loads(body)
    text = []
    for part in body["Fn::Join"][1]:
        if isinstance(part, str):
            text.append(part)
        else:
            assert set(part) == {"Fn::GetAtt"} and part["Fn::GetAtt"][1] == "Arn", part
            text.append(f"<{part['Fn::GetAtt'][0]}.Arn>")
    return json.loads("".join(text))


def _states(states: dict[str, Any], parallel: str | None = None) -> Iterator[tuple[str, dict[str, Any], str | None]]:
    """Every state, depth first, with the Parallel state it is a branch of (None at the top)."""
    for name, state in states.items():
        yield name, state, parallel
        for branch in state.get("Branches", []):
            yield from _states(branch["States"], parallel=name)


def _tasks(definition: dict[str, Any]) -> dict[str, tuple[dict[str, Any], str | None]]:
    return {name: (state, parent) for name, state, parent in _states(definition["States"]) if state["Type"] == "Task"}


@pytest.fixture(scope="module")
def steps(template) -> dict[str, str]:
    """Logical id of each step function → its step name."""
    ids = function_ids(template)
    return {ids[name]: name for name in STEP_FUNCTIONS}


@pytest.fixture(scope="module")
def definitions(template) -> dict[str, dict[str, Any]]:
    return {workflow: _definition(_machine(template, workflow)[1]) for workflow in MACHINES}


def _step_of(state: dict[str, Any], steps: dict[str, str]) -> str:
    resource = state["Resource"]
    assert resource.startswith("<") and resource.endswith(".Arn>"), resource
    return steps[resource[1:-5]]


@pytest.mark.parametrize("workflow", sorted(MACHINES))
def test_both_machines_are_standard_logged_in_full_to_their_own_group_and_traced(template, workflow):
    _id, machine = _machine(template, workflow)
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["StateMachineName"] == f"apranova-dev-{workflow}"
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    ((destination,),) = [logging["Destinations"]]
    group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    group = template.find_resources("AWS::Logs::LogGroup")[group_id]
    assert group["Properties"]["RetentionInDays"] > 0
    # Its own group: the other machine and no function writes there.
    other = _machine(template, ({*MACHINES} - {workflow}).pop())[1]
    other_group = other["Properties"]["LoggingConfiguration"]["Destinations"][0]["CloudWatchLogsLogGroup"]
    assert other_group["LogGroupArn"]["Fn::GetAtt"][0] != group_id
    for function in template.find_resources("AWS::Lambda::Function").values():
        assert function["Properties"].get("LoggingConfig", {}).get("LogGroup") != {"Ref": group_id}


@pytest.mark.parametrize("workflow", sorted(MACHINES))
def test_every_task_invokes_a_step_function_directly(definitions, steps, workflow):
    tasks = _tasks(definitions[workflow])
    assert tasks
    for name, (state, _parent) in tasks.items():
        # The function ARN itself (lambda:invoke with the payload as the response), never an
        # arn:aws:states:::<service>:<action> integration.
        assert _step_of(state, steps) in STEP_FUNCTIONS, name
        assert "Parameters" not in state and "Arguments" not in state, name


def _total_wait(retry: dict[str, Any]) -> float:
    """The longest a retrier waits in all (before jitter), every interval capped at MaxDelaySeconds."""
    interval, total = float(retry["IntervalSeconds"]), 0.0
    for attempt in range(retry["MaxAttempts"]):
        total += min(interval * retry["BackoffRate"] ** attempt, retry.get("MaxDelaySeconds", float("inf")))
    return total


def _retrier(state: dict[str, Any], errors: tuple[str, ...]) -> dict[str, Any]:
    (retry,) = [r for r in state["Retry"] if r["ErrorEquals"] == list(errors)]
    return retry


@pytest.mark.parametrize("workflow", sorted(MACHINES))
def test_every_task_waits_out_lambda_throttling_with_jitter_and_a_long_ceiling(definitions, workflow):
    # AWS's recommended retry for a lambda:invoke task, with full jitter so a throttled burst does
    # not come back at once, and a ceiling of minutes so reserved concurrency delays, never fails.
    assert "Lambda.TooManyRequestsException" in LAMBDA_SERVICE_ERRORS
    assert {"Lambda.ServiceException", "Lambda.SdkClientException"} <= set(LAMBDA_SERVICE_ERRORS)
    for name, (state, _parent) in _tasks(definitions[workflow]).items():
        assert state["Retry"][0]["ErrorEquals"] == list(LAMBDA_SERVICE_ERRORS), name  # first: nothing shadows it
        retry = state["Retry"][0]
        assert retry["JitterStrategy"] == "FULL", name
        assert retry["BackoffRate"] > 1 and retry["MaxAttempts"] >= 8, name
        assert retry["MaxDelaySeconds"] >= 300, name
        assert _total_wait(retry) >= 15 * 60, name


@pytest.mark.parametrize("workflow", sorted(MACHINES))
def test_every_task_retries_the_transient_errors_with_backoff_and_never_a_permanent_one(definitions, workflow):
    for name, (state, _parent) in _tasks(definitions[workflow]).items():
        retry = _retrier(state, TRANSIENT_ERRORS)
        assert retry["MaxAttempts"] >= 2 and retry["BackoffRate"] > 1 and retry["IntervalSeconds"] >= 1, name
        for other in state["Retry"]:
            # Permanent errors are not retried: they are recorded at once.
            assert not {"ToolFailed", "ToolNotConfigured", "States.ALL"} & set(other["ErrorEquals"]), name
    assert set(TRANSIENT_ERRORS) == {
        "ToolUnavailable",
        "OperationalError",
        *DATABASE_CONNECTION_LOST,
        *DATABASE_CONTENTION,
    }


def test_a_tool_outage_while_deprovisioning_retries_for_hours_in_its_own_branch(definitions, steps):
    definition = definitions["deprovision"]
    tool_tasks = {name: (state, parent) for name, (state, parent) in _tasks(definition).items()
                  if _step_of(state, steps) in TOOL_STEPS.values()}  # fmt: skip
    assert len(tool_tasks) == len(DP_TOOLS) + len(FSD_TOOLS)
    parallel = definition["States"]["DeprovisionTools"]
    assert len(parallel["Branches"]) == len(tool_tasks)  # one branch per tool: none waits for another
    for name, (state, parent) in tool_tasks.items():
        assert parent == "DeprovisionTools", name
        retry = _retrier(state, TRANSIENT_ERRORS)
        assert retry["JitterStrategy"] == "FULL" and retry["MaxDelaySeconds"] >= 3600, name
        assert retry["IntervalSeconds"] >= 60, name
        assert _total_wait(retry) >= 3 * 3600, name  # hours, not seconds
        # Caught in the branch: the tool is recorded as pending and the other branches go on.
        (catch,) = state["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"] and catch["ResultPath"] == "$.error", name
        (branch,) = [b for b in parallel["Branches"] if name in b["States"]]
        pending = branch["States"][catch["Next"]]
        assert pending["Type"] == "Pass" and pending["Parameters"]["outcome"] == "PENDING", name
        assert pending.get("End") is True, name
    # The machine outlives the longest retry; a pending tool fails the run at RecordDeprovisioned.
    assert parallel["ResultPath"] == "$.tools"
    assert _step_of(definition["States"][parallel["Next"]], steps) == "provision-record-deprovisioned"


def test_the_deprovision_machine_outlives_its_longest_retry(template, definitions):
    longest = max(
        _total_wait(retry) for state, _parent in _tasks(definitions["deprovision"]).values() for retry in state["Retry"]
    )
    assert definitions["deprovision"]["TimeoutSeconds"] > 1.5 * longest


@pytest.mark.parametrize("workflow", sorted(MACHINES))
def test_the_first_states_keep_exactly_the_input_contract(definitions, workflow):
    definition = definitions[workflow]
    start = definition["States"][definition["StartAt"]]
    assert start["Type"] == "Pass"
    run = definition["States"][start["Next"]]
    kept = {key[:-2] for key in run["Parameters"] if key.endswith(".$")}
    assert kept == {*STATE_FIELDS, "workflow", "action"}


def _failure_state(definition: dict[str, Any], workflow: str) -> str:
    (name,) = [n for n in definition["States"] if n.endswith("RecordProvisioningFailure")]
    return name


@pytest.mark.parametrize("workflow", sorted(MACHINES))
def test_every_failure_is_caught_recorded_and_alerted(definitions, steps, workflow):
    definition = definitions[workflow]
    states = definition["States"]
    failure = _failure_state(definition, workflow)
    assert _step_of(states[failure], steps) == "provision-record-failure"
    alert = states[failure]["Next"]
    assert _step_of(states[alert], steps) == "provision-alert-ops"
    assert states[states[alert]["Next"]]["Type"] == "Fail"
    chain = {failure, alert}
    exempt = {"SendWelcomeEmail"} if workflow == "enrollment" else set()
    for name, state, parent in _states(states):
        if state["Type"] not in ("Task", "Parallel") or name in chain | exempt:
            continue
        if parent is not None:
            if workflow == "enrollment":  # a branch's failure fails its Parallel, which catches it
                assert "Catch" not in state, name
            continue  # a deprovision branch catches its own tool (see the outage test)
        catches = state.get("Catch", [])
        assert [c["ErrorEquals"] for c in catches] == [["States.ALL"]], name
        assert catches[0]["Next"] == failure and catches[0]["ResultPath"] == "$.error", name


def test_an_email_failure_never_undoes_an_enrollment(definitions, steps):
    states = definitions["enrollment"]["States"]
    welcome = states["SendWelcomeEmail"]
    assert _step_of(welcome, steps) == "provision-welcome-email"
    (catch,) = welcome["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"] and catch["ResultPath"] != "$"
    # The path from the catch ends in success without touching the failure chain.
    name = catch["Next"]
    while states[name]["Type"] not in ("Succeed", "Fail"):
        name = states[name]["Next"]
    assert states[name]["Type"] == "Succeed"
    # An unknown track is a recorded failure, not a silent success.
    (choice,) = [s for s in states.values() if s["Type"] == "Choice"]
    default = states[choice["Default"]]
    assert default["Next"] == _failure_state(definitions["enrollment"], "enrollment")


def test_enrollment_provisions_each_track_s_tools_and_deprovision_takes_back_every_tool(definitions, steps):
    enrollment, deprovision = definitions["enrollment"], definitions["deprovision"]
    states = enrollment["States"]
    (choice,) = [s for s in states.values() if s["Type"] == "Choice"]
    by_track = {c["StringEquals"]: c["Next"] for c in choice["Choices"]}
    assert set(by_track) == {"DP", "FSD"}

    def tools_from(name: str) -> set[str]:
        state = states[name]
        if state["Type"] == "Parallel":
            return {_step_of(s, steps) for b in state["Branches"] for s in b["States"].values() if s["Type"] == "Task"}
        return {_step_of(state, steps)}

    assert tools_from(by_track["DP"]) == {TOOL_STEPS[t] for t in DP_TOOLS}
    assert tools_from(by_track["FSD"]) == {TOOL_STEPS[t] for t in FSD_TOOLS}
    taken_back = [_step_of(s, steps) for s, _parent in _tasks(deprovision).values()]
    for tool in (*DP_TOOLS, *FSD_TOOLS):
        assert taken_back.count(TOOL_STEPS[tool]) == 1, tool
    assert "provision-record-deprovisioned" in taken_back


@pytest.mark.parametrize("workflow", sorted(MACHINES))
def test_each_machine_role_may_invoke_exactly_its_step_functions(template, definitions, steps, workflow):
    _id, machine = _machine(template, workflow)
    role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    invoked = {_step_of(s, steps) for s, _parent in _tasks(definitions[workflow]).values()}
    by_step = {name: logical_id for logical_id, name in steps.items()}
    expected = sorted(r for step in invoked for r in (f"<{by_step[step]}.Arn>", f"<{by_step[step]}.Arn>:*"))
    invoke, other = [], []
    for statement in role_statements_by_id(template, role_id):
        assert statement["Effect"] == "Allow"
        (invoke if "lambda:InvokeFunction" in statement["Action"] else other).append(statement)
    assert [s["Action"] for s in invoke] == [["lambda:InvokeFunction"]] * len(invoke)
    assert sorted(r for s in invoke for r in s["Resource"]) == expected
    for statement in other:
        assert statement["Resource"] == ["*"] and set(statement["Action"]) <= UNSCOPED, statement
    # The role is Step Functions' own, nobody else's.
    role = template.find_resources("AWS::IAM::Role")[role_id]
    ((principal,),) = [[s["Principal"] for s in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]]]
    assert principal == {"Service": "states.amazonaws.com"}
