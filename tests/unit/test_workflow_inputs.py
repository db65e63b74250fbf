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
