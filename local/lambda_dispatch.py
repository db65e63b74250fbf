"""Run the in-repo Lambda handlers when moto's Docker-free Lambda backend is invoked.

With ``{"lambda": {"use_docker": False}}`` moto answers every Invoke from ``LambdaSimpleBackend``,
which echoes the payload. ``install()`` replaces its ``invoke`` so that a function registered here
runs its real handler in this process: the Step Functions that moto executes (their ``lambda:invoke``
tasks call moto's Lambda API) and any boto3 ``invoke`` reach our code. A handler that raises
answers like Lambda does: the function-error header and ``{"errorType", "errorMessage"}``, so
``Retry``/``Catch`` on the exception's class name behave as in AWS. Invocations run at once, each
in an environment of the function that serves nothing else meanwhile (local/environments.py), so
concurrent executions' steps overlap as they do in AWS.
"""

from __future__ import annotations

import json
import threading
import traceback
import uuid
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend

from local import moto_overhead
from local.environments import Environments
from local.events import LambdaContext

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
    try:
        with ENVIRONMENTS.borrow(function_name, handler) as environment:
            return environment.handler(event, LambdaContext(function_name, uuid.uuid4().hex)), None
    except Exception as error:  # noqa: BLE001 - every failure becomes Lambda's error payload
        return {
            "errorType": type(error).__name__,
            "errorMessage": str(error),
            "stackTrace": traceback.format_exception(error)[-5:],
        }, "Unhandled"


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


def install() -> None:
    """Patch moto's Docker-free Lambda backend, and its Step Functions' per-execution parse and
    per-task client (local/moto_overhead.py) (idempotent)."""
    global _installed
    moto_overhead.install()
    with _lock:
        if not _installed:
            LambdaSimpleBackend.invoke = _invoke  # type: ignore[method-assign]
            _installed = True
