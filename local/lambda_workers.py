"""Lambda's environments in processes: the local stack's Lambda invocations (the workflow steps,
the export worker) run in a few worker processes instead of the stack's own.

Everything else of the local stack (the API, moto with its Step Functions interpreter, the
emulators) is one Python process. With the steps' handlers in that process too, a burst of
enrollments was limited by one interpreter lock (docs/decisions.md, issue 13). In AWS every
environment is a process of its own; here ``size`` processes (``python -m local.lambda_workers``)
share the invocations:

- each worker runs its invocations as the stack ran them in-process (local/environments.py): an
  invocation borrows an environment of its function that serves nothing else meanwhile (the
  module as imported, or a fresh copy of it while that one is busy) with its own database
  connection, in a thread of its own. A step waiting on a tool or the database holds only its
  environment, never a worker; an invocation goes to the worker with the fewest in flight;
- the stack's environment variables reach the workers with each invocation (the stack sets some
  after the workers started, e.g. the workspace door's URL);
- a handler that raises answers with the payload the in-process dispatch builds (``errorType`` is
  the exception's class name, so ``Retry``/``Catch`` behave the same); a worker that dies answers
  ``Runtime.ExitError`` for each invocation it had in flight, as Lambda does, and is replaced;
- the workers start with the stack and import the registered handlers' modules before their first
  invocation (provisioned concurrency: the imports are paid at the start, not by the first payers).

Off unless ``lambda_dispatch.use_worker_processes`` is called (``python -m local.stack`` does): the
in-process tests that patch handler modules keep running the handlers in their own process. Faults
injected with ``lambda_dispatch.inject`` are taken before an invocation reaches a worker.

Frames on the pipes: a 4-byte big-endian length, then JSON.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterable
from typing import IO, Any

_HEADER = struct.Struct(">I")
EXIT_ERROR = "Runtime.ExitError"


def _write(stream: IO[bytes], message: Any) -> None:
    data = json.dumps(message, default=str).encode()
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read(stream: IO[bytes]) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the worker's pipe closed")
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the worker's pipe closed")
    return json.loads(data)


def error_payload(error: BaseException) -> dict[str, Any]:
    """Lambda's payload for a handler that raised (the same in-process and in a worker)."""
    return {
        "errorType": type(error).__name__,
        "errorMessage": str(error),
        "stackTrace": traceback.format_exception(error)[-5:],
    }


class _Call:
    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.done = threading.Event()
        self.answer: tuple[Any, str | None] | None = None


class Worker:
    """One worker process; invocations from any thread, answered by a reader thread."""

    def __init__(self, preload: Iterable[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.lambda_workers", *preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=dict(os.environ),
        )
        self._send = threading.Lock()
        self._calls: dict[int, _Call] = {}
        self._ids = itertools.count()
        self._guard = threading.Lock()
        self.dead = False
        self.load = 0  # invocations sent here and not yet answered (kept by the pool)
        threading.Thread(target=self._answers, name=f"lambda-worker-{self.process.pid}", daemon=True).start()

    def invoke(self, function: str, handler: str, event: Any, request_id: str) -> tuple[Any, str | None]:
        assert self.process.stdin is not None
        call = _Call(request_id)
        with self._guard:
            if self.dead:
                return self._exit_error(call)
            number = next(self._ids)
            self._calls[number] = call
        message = {
            "id": number,
            "function": function,
            "handler": handler,
            "event": event,
            "request_id": request_id,
            "environ": dict(os.environ),
        }
        try:
            with self._send:
                _write(self.process.stdin, message)
        except (OSError, ValueError):  # the pipe is gone: the reader answers ExitError
            pass
        call.done.wait()
        assert call.answer is not None
        return call.answer

    def _exit_error(self, call: _Call) -> tuple[Any, str | None]:
        code = self.process.poll()
        message = f"RequestId: {call.request_id} Error: Runtime exited" + (f" with {code}" if code is not None else "")
        return {"errorType": EXIT_ERROR, "errorMessage": message}, "Unhandled"

    def _answers(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        try:
            while True:
                answer = _read(stream)
                with self._guard:
                    call = self._calls.pop(answer["id"], None)
                if call is not None:
                    call.answer = (answer["result"], answer["error"])
                    call.done.set()
        except (EOFError, OSError, ValueError):
            pass
        with self._guard:
            self.dead = True
            calls, self._calls = list(self._calls.values()), {}
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for call in calls:
            call.answer = self._exit_error(call)
            call.done.set()

    def stop(self) -> None:
        """Closes the pipe and ends the process at once (one still importing its modules, or
        serving an invocation, is not waited for: the stack is stopping)."""
        self.close_pipe()
        self.reap()

    def close_pipe(self) -> None:
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except OSError:
                pass

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()

    def reap(self) -> None:
        self.terminate()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


class WorkerPool:
    def __init__(self, size: int, preload: Iterable[str] = ()) -> None:
        if size < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.size = size
        self._preload = sorted(set(preload))
        self._guard = threading.Lock()
        self._closed = False
        self.invocations = 0
        self.replaced = 0  # workers that died
        self.workers = [Worker(self._preload) for _ in range(size)]

    def _choose(self) -> Worker:
        with self._guard:
            if self._closed:
                raise RuntimeError("the Lambda worker pool is closed")
            for index, worker in enumerate(self.workers):
                if worker.dead:
                    self.replaced += 1
                    self.workers[index] = Worker(self._preload)
            self.invocations += 1
            worker = min(self.workers, key=lambda w: w.load)
            worker.load += 1
            return worker

    def invoke(self, function: str, handler: str, event: Any, request_id: str) -> tuple[Any, str | None]:
        """(result, None) or (Lambda's error payload, "Unhandled"), as ``lambda_dispatch.run``."""
        worker = self._choose()
        try:
            return worker.invoke(function, handler, event, request_id)
        finally:
            with self._guard:
                worker.load -= 1

    def close(self) -> None:
        with self._guard:
            self._closed = True
            workers, self.workers = self.workers, []
        for worker in workers:
            worker.close_pipe()
            worker.terminate()
        for worker in workers:
            worker.reap()


# ---- the worker process -------------------------------------------------------------------------


_sent: set[str] = set()  # the stack's variables as last received


def _sync_environ(environ: dict[str, str]) -> None:
    """The stack's environment variables here: changed ones set, ones the stack removed removed
    (what this process set itself stays)."""
    for key in _sent - environ.keys():
        os.environ.pop(key, None)
    for key, value in environ.items():
        if os.environ.get(key) != value:
            os.environ[key] = value
    _sent.clear()
    _sent.update(environ)


def _build_tool_provisioners() -> None:
    """Provisioned concurrency's init, continued: each tool's provisioner (its boto3 clients, whose
    service models botocore loads from disk) is built before the first invocation. Built by the
    first tool steps of a burst instead, 15 builds (3 workers, 5 tools) came to about 0.5-1 s of
    CPU inside the 50-payer burst. A tool that cannot be built here (not configured) is left to
    its step, which records and reports why when it is invoked."""
    from functions.provision.tools import registry

    for tool in registry.BUILDERS:
        try:
            registry.provisioner(tool)
        except Exception as error:  # noqa: BLE001 - its step raises it again, recorded
            print(f"lambda worker: the {tool} provisioner is not built at start: {error}", file=sys.stderr)


def _serve(preload: list[str]) -> int:
    # The pipe to the stack is this process's stdout as started; anything the handlers print or
    # log to stdout goes to stderr (the stack's log) instead.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    # Ctrl-C in `make dev` reaches the whole process group: the stack stops its workers itself
    # (it closes their pipes), and a worker whose stack died hard sees its pipe close.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _sent.update(os.environ)  # started with the stack's environment

    import importlib

    from apranova.observability import logger as powertools_logger
    from local import heap
    from local.environments import Environments
    from local.events import LambdaContext

    powertools_logger.registered_handler.setStream(sys.stderr)  # type: ignore[attr-defined]
    environments = Environments()
    send = threading.Lock()

    for spec in preload:  # provisioned concurrency: the imports before the first invocation
        try:
            importlib.import_module(spec.partition(":")[0])
        except Exception:  # noqa: BLE001 - an invocation of it will raise and say why
            traceback.print_exc()
    _build_tool_provisioners()
    heap.settle()

    def invoke(message: dict[str, Any]) -> None:
        function = message["function"]
        try:
            with environments.borrow(function, message["handler"]) as environment:
                result = environment.handler(message["event"], LambdaContext(function, message["request_id"]))
            answer: dict[str, Any] = {"id": message["id"], "result": result, "error": None}
            data = json.dumps(answer, default=str)
        except Exception as error:  # noqa: BLE001 - every failure becomes Lambda's error payload
            answer = {"id": message["id"], "result": error_payload(error), "error": "Unhandled"}
            data = json.dumps(answer, default=str)
        frame = data.encode()
        with send:
            answers.write(_HEADER.pack(len(frame)) + frame)
            answers.flush()

    while True:
        try:
            message = _read(requests)
        except EOFError:
            return 0
        _sync_environ(message.pop("environ"))
        threading.Thread(target=invoke, args=(message,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1:]))
