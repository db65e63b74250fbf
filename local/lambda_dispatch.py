"""Run the in-repo Lambda handlers when moto's Docker-free Lambda backend is invoked.

With ``{"lambda": {"use_docker": False}}`` moto answers every Invoke from ``LambdaSimpleBackend``,
which echoes the payload. ``install()`` replaces its ``invoke`` so that a function registered here
runs its real handler in this process: the Step Functions that moto executes (their ``lambda:invoke``
tasks call moto's Lambda API) and any boto3 ``invoke`` reach our code. A handler that raises
answers like Lambda does: the function-error header and ``{"errorType", "errorMessage"}``, so
``Retry``/``Catch`` on the exception's class name behave as in AWS. Invocations run at once, each
in an environment of the function that serves nothing else meanwhile (local/environments.py), so
concurrent executions' steps overlap as they do in AWS. ``use_worker_processes`` (what
``python -m local.stack`` calls) runs them in a few worker processes instead, each holding such
environments, so that the steps are not limited by this process's interpreter lock
(local/lambda_workers.py).

A Lambda task of moto's Step Functions naming a registered function is invoked here directly
(``install``): what moto's Lambda API would answer (the function looked up in moto's Lambda, the
same payload and ``FunctionError``, the same 6 MB limit), without the HTTP round trip through
botocore, moto's server and its Flask routing, which was a tenth of the stack's CPU under a burst
of enrollments. A task naming anything else, or a lookup that fails, goes through moto as before.
"""

from __future__ import annotations

import io
import json
import os
import threading
import uuid
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend, lambda_simple_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

from local import moto_overhead
from local.environments import Environments
from local.events import LambdaContext
from local.lambda_workers import WorkerPool, error_payload

# Lambda function name → "module:attribute" of its handler.
HANDLERS: dict[str, str] = {}

_original_invoke = LambdaSimpleBackend.invoke
_installed = False
_lock = threading.Lock()


def register(function_name: str, handler: str) -> None:
    """``handler`` is ``"functions.x.handler.lambda_handler"`` or ``"module:attribute"``."""
    HANDLERS[function_name] = handler if ":" in handler else ":".join(handler.rsplit(".", 1))


# Faults the workflow tests inject: function name → error type names to raise, one per invocation,
# before the handler runs (a Lambda-style error payload, as if the handler had raised it).
FAULTS: dict[str, list[str]] = {}
ENVIRONMENTS = Environments()
# The worker processes the invocations run in, when on (use_worker_processes); None: in this process.
WORKERS: WorkerPool | None = None
# How many worker processes ``python -m local.stack`` starts (LOCAL_LAMBDA_WORKERS; 0: in-process).
DEFAULT_WORKERS = 3


def use_worker_processes(size: int | None = None) -> WorkerPool | None:
    """From now on, invocations run in ``size`` worker processes (default ``LOCAL_LAMBDA_WORKERS``,
    else ``DEFAULT_WORKERS``; 0 keeps them in this process), each importing the modules of the
    handlers registered so far before its first invocation. Call it once the environment the
    handlers read is set."""
    global WORKERS
    if size is None:
        size = int(os.environ.get("LOCAL_LAMBDA_WORKERS") or DEFAULT_WORKERS)
    with _lock:
        if WORKERS is not None:
            WORKERS.close()
            WORKERS = None
        if size > 0:
            WORKERS = WorkerPool(size, HANDLERS.values())
        return WORKERS


def stop_worker_processes() -> None:
    global WORKERS
    with _lock:
        pool, WORKERS = WORKERS, None
    if pool is not None:
        pool.close()


def inject(function_name: str, error_type: str, times: int = 1) -> None:
    """The next ``times`` invocations of ``function_name`` fail with ``error_type`` (tests only)."""
    FAULTS.setdefault(function_name, []).extend([error_type] * times)


def run(function_name: str, event: Any) -> tuple[Any, str | None]:
    """Run a registered function's handler: (result, None) or (Lambda error payload, "Unhandled")."""
    handler = HANDLERS[function_name]
    faults = FAULTS.get(function_name)
    if faults:
        error_type = faults.pop(0)
        return {"errorType": error_type, "errorMessage": f"injected {error_type}", "stackTrace": []}, "Unhandled"
    pool = WORKERS
    if pool is not None:
        return pool.invoke(function_name, handler, event, uuid.uuid4().hex)
    try:
        with ENVIRONMENTS.borrow(function_name, handler) as environment:
            return environment.handler(event, LambdaContext(function_name, uuid.uuid4().hex)), None
    except Exception as error:  # noqa: BLE001 - every failure becomes Lambda's error payload
        return error_payload(error), "Unhandled"


def _invoke(
    self: LambdaSimpleBackend,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: Any,
) -> str | bytes | None:
    name = function_name.split(":function:")[-1].split(":")[0] if ":function:" in function_name else function_name
    if name not in HANDLERS:
        return _original_invoke(self, function_name, qualifier, body, headers, response_headers)
    self.get_function(function_name, qualifier)  # ResourceNotFound for a function moto does not know
    text = body.decode() if isinstance(body, bytes) else (body or "")
    event = json.loads(text) if text.strip() else {}
    if (headers or {}).get("X-Amz-Invocation-Type") == "Event":
        threading.Thread(target=run, args=(name, event), daemon=True).start()
        return b""
    result, function_error = run(name, event)
    if function_error:
        response_headers["x-amz-function-error"] = function_error
    return json.dumps(result, default=str).encode()


# moto's Lambda API answers a payload over this size with this error instead (moto/awslambda/responses.py).
_MAX_PAYLOAD = 6000000
_TOO_LARGE = {
    "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
    "errorType": "Function.ResponseSizeTooLarge",
}
_original_task_invoke = lambda_eval_utils._invoke_lambda_function


def _task_invoke(parameters: dict[str, Any], region: str, state_credentials: Any) -> dict[str, Any]:
    """moto's Step Functions Lambda task (``lambda_eval_utils._invoke_lambda_function``) for a
    registered function: the answer moto's Lambda API gives, without the trip over HTTP."""
    function = str(parameters.get("FunctionName") or "")
    name = function.split(":function:")[-1].split(":")[0] if ":function:" in function else function
    if name not in HANDLERS or set(parameters) - {"FunctionName", "Payload"}:
        return _original_task_invoke(parameters, region, state_credentials)
    arn = function.split(":")
    account, function_region = (arn[4], arn[3]) if len(arn) > 5 and arn[0] == "arn" else (DEFAULT_ACCOUNT_ID, region)
    try:
        lambda_simple_backends[account][function_region].get_function(function, None)
    except Exception:  # noqa: BLE001 - moto's API answers it (ResourceNotFound, ...) as before
        return _original_task_invoke(parameters, region, state_credentials)
    body = parameters.get("Payload") or b""
    text = body.decode() if isinstance(body, bytes) else str(body)
    result, function_error = run(name, json.loads(text) if text.strip() else {})
    payload = json.dumps(result, default=str).encode()
    if len(payload) > _MAX_PAYLOAD:
        payload, function_error = json.dumps(_TOO_LARGE).encode(), "Unhandled"
    response: dict[str, Any] = {"StatusCode": 200, "Payload": lambda_eval_utils._from_payload(io.BytesIO(payload))}
    if function_error:
        response["FunctionError"] = function_error
    return response


def install() -> None:
    """Patch moto's Docker-free Lambda backend, its Step Functions' Lambda task, and its costs
    AWS does not have (local/moto_overhead.py) (idempotent)."""
    global _installed
    moto_overhead.install()
    with _lock:
        if not _installed:
            LambdaSimpleBackend.invoke = _invoke  # type: ignore[method-assign]
            lambda_eval_utils._invoke_lambda_function = _task_invoke
            _installed = True
