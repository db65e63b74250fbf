"""The workflow step functions: one Lambda per step, each with its own least-privilege role.

CDK deploys one function per entry (code from functions/provision/, handler ``<module>.lambda_handler``),
the local stack registers each in moto so the state machines' ``lambda:invoke`` tasks reach the
in-repo handlers, and the workflow tests resolve the synthesized definition with the same names.
"""

from __future__ import annotations

from apranova import inventory
from apranova.inventory import Trigger

# step name (also the function's name after the "apranova-" prefix) → handler module: the step rows
# of the function inventory (apranova/inventory.py), which holds their limits and grants.
STEP_FUNCTIONS: dict[str, str] = {f.name: f.handler for f in inventory.of(Trigger.STEP)}

# The tool steps, by the tool they provision (tool_provisioning.tool).
TOOL_STEPS: dict[str, str] = {
    "STUDENT_DATABASE": "provision-student-database",
    "SUPERSET": "provision-superset",
    "PREFECT": "provision-prefect",
    "JUPYTER": "provision-jupyter",
    "WORKSPACE": "provision-workspace",
}
DP_TOOLS = ("STUDENT_DATABASE", "SUPERSET", "PREFECT", "JUPYTER")
FSD_TOOLS = ("WORKSPACE",)

# A database connection lost (a restart, a failover, the proxy or pooler dropping it): Lambda names
# the error by psycopg's class for its SQLSTATE (57P01-03, class 08), not by the OperationalError
# they all derive from, and a retry matches names exactly. The next attempt reconnects.
DATABASE_CONNECTION_LOST = (
    "AdminShutdown",
    "CrashShutdown",
    "CannotConnectNow",
    "ConnectionException",
    "ConnectionDoesNotExist",
    "ConnectionFailure",
    "SqlclientUnableToEstablishSqlconnection",
    "SqlserverRejectedEstablishmentOfSqlconnection",
    "ProtocolViolation",
    # psycopg's answer when a pooler loses the server connection in the middle of a transaction
    # ("received 2 results from command 'COMMIT'"); the connection is closed, the retry reconnects.
    "InternalError",
)
# A statement that waited too long or lost a race under load (a burst of enrollments queueing on the
# same lock: statement_timeout cancels the wait): the next attempt finds the lock free.
DATABASE_CONTENTION = ("QueryCanceled", "LockNotAvailable", "DeadlockDetected", "SerializationFailure")
# Errors a retry can fix: a tool or database refusing connections or timing out.
TRANSIENT_ERRORS = (
    "ToolUnavailable",
    "OperationalError",
    *DATABASE_CONNECTION_LOST,
    *DATABASE_CONTENTION,
)
# Lambda's own errors on invoking a step (AWS's recommended retry for lambda:invoke tasks):
# throttling above the step's reserved concurrency among them. A burst waits, with jitter so the
# throttled invocations do not all come back at once, instead of failing the enrollment.
LAMBDA_SERVICE_ERRORS = (
    "Lambda.TooManyRequestsException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
)
