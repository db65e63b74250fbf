"""Step failures, named: the state machine retries or catches by the exception's class name."""

from __future__ import annotations


class WorkflowError(Exception):
    """A permanent failure of a step: caught, recorded and alerted, not retried."""


class InvalidInput(WorkflowError):
    """The execution input is not one this workflow accepts (unknown track, missing ids)."""


class UserNotFound(WorkflowError):
    """The user does not exist (or was deleted while the workflow ran)."""


class PaymentNotValid(WorkflowError):
    """The payment does not (or no longer) pay for this enrollment."""


class DeprovisionIncomplete(WorkflowError):
    """A tool could not be taken back after its retries (an outage that outlasted them): what was
    taken back is recorded, the run fails and is alerted, and the pending tools are named."""
