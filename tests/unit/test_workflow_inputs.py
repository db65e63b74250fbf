"""The state machines' input contract (apranova/workflow_inputs.py): what each start site may send."""

from __future__ import annotations

import json
import uuid

import pytest
from pydantic import ValidationError

from apranova.workflow_inputs import (
    STATE_FIELDS,
    DeprovisionInput,
    EnrollmentInput,
    InvalidWorkflowInput,
)

USER, PAYMENT = str(uuid.uuid4()), str(uuid.uuid4())


def test_both_machines_share_the_fields_their_first_states_copy() -> None:
    assert set(STATE_FIELDS) == set(EnrollmentInput.model_fields) == set(DeprovisionInput.model_fields)


@pytest.mark.parametrize(
    "workflow_input",
    [
        EnrollmentInput.paid({"id": PAYMENT, "user_id": USER, "track": "DP"}),
        EnrollmentInput.by_admin(USER, "FSD"),
        EnrollmentInput.reprovision(USER, "DP"),
        DeprovisionInput.withdrawal({"id": PAYMENT, "user_id": USER, "track": "DP", "dispute_status": None}),
        DeprovisionInput.withdrawal({"id": PAYMENT, "user_id": USER, "track": "FSD", "dispute_status": "LOST"}),
        DeprovisionInput.erasure(USER, None),
    ],
)
def test_every_start_site_sends_every_field_and_reads_back_the_same(workflow_input) -> None:
    sent = json.loads(workflow_input.execution_input())
    assert set(sent) == set(STATE_FIELDS)  # null or not, each is there for the first Pass state
    # A step reads it back from the state, whatever earlier states added.
    assert type(workflow_input).read({**sent, "workflow": "x", "action": "y", "error": {}}) == workflow_input


def test_the_sources_say_what_each_run_is() -> None:
    refund = DeprovisionInput.withdrawal({"id": PAYMENT, "user_id": USER, "track": "DP", "dispute_status": "WON"})
    dispute = DeprovisionInput.withdrawal({"id": PAYMENT, "user_id": USER, "track": "DP", "dispute_status": "LOST"})
    assert (refund.source, dispute.source, DeprovisionInput.erasure(USER, "DP").source) == (
        "refund",
        "dispute",
        "purge",
    )
    assert not refund.everything and DeprovisionInput.erasure(USER, "DP").everything


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (EnrollmentInput, {"track": "DP", "payment_id": None, "source": "stripe"}),  # paid names its payment
        (EnrollmentInput, {"track": "DP", "payment_id": PAYMENT, "source": "refund"}),  # not an enrollment source
        (EnrollmentInput, {"track": "dp", "payment_id": None, "source": "admin"}),
        (DeprovisionInput, {"track": "DP", "payment_id": None, "source": "refund"}),  # scoped to a payment
        (DeprovisionInput, {"track": "DP", "payment_id": None, "source": "dispute"}),
        (DeprovisionInput, {"track": "DP", "payment_id": PAYMENT, "source": "purge"}),  # everything, no payment
        (DeprovisionInput, {"track": "DP", "payment_id": "not-a-uuid", "source": "refund"}),
    ],
)
def test_an_input_outside_the_contract_is_refused(model, fields) -> None:
    with pytest.raises(ValidationError):
        model(user_id=USER, **fields)
    with pytest.raises(InvalidWorkflowInput, match="execution input is not valid") as refused:
        model.read({"user_id": USER, **fields})
    assert PAYMENT not in str(refused.value) and USER not in str(refused.value)  # names fields, not values


def test_a_state_missing_its_source_is_refused() -> None:
    """The webhook's refund once sent no source: every such run failed before any step."""
    with pytest.raises(InvalidWorkflowInput, match="source"):
        DeprovisionInput.read({"user_id": USER, "track": "DP", "payment_id": PAYMENT})


@pytest.fixture
def stubbed_sfn(monkeypatch):
    """A real boto3 Step Functions client whose calls are answered by botocore's Stubber: a call it
    was not told to expect fails the test."""
    import boto3
    from botocore.stub import Stubber

    from apranova import workflows

    sfn = boto3.client("stepfunctions", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    monkeypatch.setattr(workflows, "client", lambda: sfn)
    with Stubber(sfn) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:enrollment"


def test_workflows_start_sends_the_contract(stubbed_sfn) -> None:
    from apranova import workflows

    workflow_input = EnrollmentInput.paid({"id": PAYMENT, "user_id": USER, "track": "DP"})
    execution = ARN.replace(":stateMachine:", ":execution:") + ":enroll-x"
    stubbed_sfn.add_response(
        "start_execution",
        {"executionArn": execution, "startDate": "2026-01-01T00:00:00Z"},
        {"stateMachineArn": ARN, "name": "enroll-x", "input": workflow_input.execution_input()},
    )
    assert workflows.start(ARN, "enroll-x", workflow_input) == (execution, True)


@pytest.mark.parametrize(
    "payload",
    [
        {"payment_id": PAYMENT, "user_id": USER, "track": "DP", "source": "stripe"},  # even a complete one
        json.loads(EnrollmentInput.by_admin(USER, "DP").execution_input()),
        None,
    ],
)
def test_workflows_start_refuses_anything_but_the_contract_and_sends_nothing(stubbed_sfn, payload) -> None:
    """Every start site builds the model (issue 13): a hand-written payload is refused before any
    StartExecution (the stubbed client expects none)."""
    from apranova import workflows

    with pytest.raises(TypeError, match="EnrollmentInput or DeprovisionInput"):
        workflows.start(ARN, "enroll-x", payload)
