"""RecordDeprovisioned: what the tools' branches took back is recorded; the enrollment's trainer
seat is freed when the run took back that enrollment (an account purge, or a refund or lost
dispute of the payment the current enrollment came from). A refund of a payment that enrolled
nobody changes nothing of the student's. A tool still pending after its retries fails the run
(``DeprovisionIncomplete``: recorded and alerted by the failure states), naming the tool."""

from __future__ import annotations

from typing import Any

from apranova import audit, db
from apranova.observability import entry, logger
from functions.provision import workflow_repository as repository
from functions.provision.errors import DeprovisionIncomplete
from functions.provision.steps import deprovision_input
from functions.provision.steps.record_failure import describe


@entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = deprovision_input(event)
    outcomes = {str(r.get("tool")): r for r in event.get("tools") or [] if isinstance(r, dict)}
    pending = {tool: describe(r.get("error")) for tool, r in outcomes.items() if r.get("outcome") == "PENDING"}
    account = repository.account(state.user_id)
    # The enrollment this run ends: everything on a purge, else the one the payment made (if any).
    owns_enrollment = account is not None and (state.everything or account["enrollment_payment_id"] == state.payment_id)
    taken_back = sorted(t for t, r in outcomes.items() if r.get("outcome") == "DEPROVISIONED")
    if account is not None and (owns_enrollment or taken_back):
        with db.transaction() as cur:
            if owns_enrollment:
                repository.unassign_trainer(cur, state.user_id)
                if not pending:
                    repository.finish_deprovisioning(cur, state.user_id)
            audit.record(
                cur,
                "TOOLS_DEPROVISIONED",
                subject_id=state.user_id,
                resource_type="user",
                resource_id=state.user_id,
                details={
                    "track": state.track,
                    "source": state.source,
                    "payment_id": state.payment_id,
                    "enrollment": owns_enrollment,
                    "tools": {tool: r.get("outcome") for tool, r in sorted(outcomes.items())},
                },
            )
    if not owns_enrollment and not taken_back:
        logger.info(
            "the payment's enrollment had nothing to take back",
            extra={"user_id": state.user_id, "payment_id": state.payment_id, "source": state.source},
        )
    if pending:
        raise DeprovisionIncomplete(
            "still pending: " + "; ".join(f"{tool} ({error})" for tool, error in sorted(pending.items()))
        )
    return {**event, "deprovisioned": taken_back}
