"""The one input contract of each state machine: every start site builds its execution input with
these models and every step reads the execution's state through them.

The state machines' first states copy exactly these fields (cdk/constructs/workflows.py builds its
Pass state from ``model_fields``), so an input that lacks one fails before any step runs
(``States.Runtime``). A start site therefore never writes a payload by hand: it builds the model
and hands it to :func:`apranova.workflows.start`, which sends :meth:`execution_input`.

- Enrollment: ``source`` says what authorises it: ``stripe`` (a paid payment, from the webhook or
  the reconciliation job: ``payment_id`` is required), ``admin`` (an administrator's manual
  enrollment) or ``reprovision`` (the tools of an existing enrollment, again).
- Deprovision: ``refund`` and ``dispute`` are scoped to ``payment_id``: they take back what that
  payment's enrollment provisioned and nothing else; ``purge`` (account erasure) takes back
  everything of the person and carries no payment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
TRACK = r"^[A-Z][A-Z0-9_]{0,15}$"

EnrollmentSource = Literal["stripe", "admin", "reprovision"]
DeprovisionSource = Literal["refund", "dispute", "purge"]


class InvalidWorkflowInput(ValueError):
    """A state the step cannot read: names the fields, never their values."""


class _Contract(BaseModel):
    # A start site's model is exactly the contract; the steps' state also carries what earlier
    # states added (``workflow``, ``action``, ``error`` ...), which reading ignores.
    model_config = ConfigDict(extra="ignore", frozen=True)

    user_id: str = Field(pattern=UUID)
    payment_id: str | None = Field(default=None, pattern=UUID)

    def payload(self) -> dict[str, Any]:
        """The execution input as a dict: every field present (``None`` as null), so the state
        machine's first Pass state finds each one."""
        return self.model_dump(mode="json")

    def execution_input(self) -> str:
        """The JSON ``input`` of ``StartExecution``."""
        return json.dumps(self.payload(), separators=(",", ":"))

    @classmethod
    def read(cls, state: dict[str, Any]) -> Self:
        """The contract's fields of an execution's state (what a step receives as its event)."""
        try:
            return cls.model_validate(state)
        except ValidationError as error:
            fields = sorted({".".join(str(p) for p in e["loc"]) or "input" for e in error.errors()})
            raise InvalidWorkflowInput(f"the execution input is not valid: {', '.join(fields)}") from None


class EnrollmentInput(_Contract):
    """Enrolls ``user_id`` in ``track`` and provisions the track's tools."""

    track: str = Field(pattern=TRACK)
    source: EnrollmentSource

    @model_validator(mode="after")
    def _paid_needs_payment(self) -> Self:
        if self.source == "stripe" and self.payment_id is None:
            raise ValueError("a paid enrollment names its payment")
        return self

    # One constructor per start site, so a start site and the tests that replay it build the same input.

    @classmethod
    def paid(cls, payment: Mapping[str, Any]) -> Self:
        """A paid payment (its row: ``id``, ``user_id``, ``track``) enrolls its payer (webhook, reconcile)."""
        return cls(user_id=str(payment["user_id"]), track=payment["track"], payment_id=str(payment["id"]),
                   source="stripe")  # fmt: skip

    @classmethod
    def by_admin(cls, user_id: str, track: str) -> Self:
        """An administrator enrolls a student without payment."""
        return cls(user_id=user_id, track=track, payment_id=None, source="admin")

    @classmethod
    def reprovision(cls, user_id: str, track: str) -> Self:
        """An administrator runs the tools of an existing enrollment again."""
        return cls(user_id=user_id, track=track, payment_id=None, source="reprovision")


class DeprovisionInput(_Contract):
    """Takes back what a refunded or disputed payment's enrollment provisioned (``refund``,
    ``dispute``), or everything the person has (``purge``)."""

    # The track of the payment (refund, dispute) or the account's, if any (purge): the tools use it
    # to name what they remove; what is removed is decided by the scope, not by the track.
    track: str | None = Field(default=None, pattern=TRACK)
    source: DeprovisionSource

    @model_validator(mode="after")
    def _scope(self) -> Self:
        if self.source in ("refund", "dispute") and self.payment_id is None:
            raise ValueError("a refund or dispute deprovision names its payment")
        if self.source == "purge" and self.payment_id is not None:
            raise ValueError("a purge takes back everything and names no payment")
        return self

    @classmethod
    def withdrawal(cls, payment: Mapping[str, Any]) -> Self:
        """A fully refunded payment, or one whose dispute was lost (its row: ``id``, ``user_id``,
        ``track``, ``dispute_status``), takes back what its enrollment provisioned (webhook)."""
        source: DeprovisionSource = "dispute" if payment.get("dispute_status") == "LOST" else "refund"
        return cls(user_id=str(payment["user_id"]), track=payment["track"], payment_id=str(payment["id"]),
                   source=source)  # fmt: skip

    @classmethod
    def erasure(cls, user_id: str, track: str | None) -> Self:
        """An account purge takes back everything of the person (the account's track, if any)."""
        return cls(user_id=user_id, track=track, payment_id=None, source="purge")

    @property
    def everything(self) -> bool:
        """Whether everything of the person goes (account erasure), not one payment's enrollment."""
        return self.source == "purge"


WorkflowInput = EnrollmentInput | DeprovisionInput

# The fields the state machines' first Pass state keeps (the same for both: a tool step serves both).
STATE_FIELDS: tuple[str, ...] = tuple(EnrollmentInput.model_fields)
