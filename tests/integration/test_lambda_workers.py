"""Lambda invocations in worker processes (local/lambda_workers.py), as ``python -m local.stack``
runs them: each in a process of its own serving one invocation at a time, with the stack's
environment, and answering exactly as the in-process dispatch answers."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from local import lambda_dispatch
from local.lambda_workers import EXIT_ERROR, WorkerPool

HANDLERS = "tests.integration.lambda_worker_handlers"


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    pool = WorkerPool(2, [f"{HANDLERS}:echo"])
    try:
        yield pool
    finally:
        pool.close()


def test_an_invocation_runs_in_another_process_with_the_environment_set_after_the_start(
    pool: WorkerPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMBDA_WORKERS_TEST_SETTING", "set after the workers started")
    result, error = pool.invoke("apranova-test-echo", f"{HANDLERS}:echo", {"a": [1, "b"]}, "req-1")
    assert error is None
    assert result["event"] == {"a": [1, "b"]}
    assert result["pid"] != os.getpid()
    assert result["setting"] == "set after the workers started"
    assert result["function"] == "apranova-test-echo"
    monkeypatch.delenv("LAMBDA_WORKERS_TEST_SETTING")
    result, _ = pool.invoke("apranova-test-echo", f"{HANDLERS}:echo", {}, "req-2")
    assert result["setting"] is None  # removed in the stack: removed in the worker


def _at_once(pool: WorkerPool, calls: int, folder: Path) -> list[tuple[dict, str | None]]:
    answers: list[tuple[dict, str | None]] = []

    def call(number: int) -> None:
        event = {"dir": str(folder), "expect": calls}
        answers.append(pool.invoke("apranova-test-meet", f"{HANDLERS}:meet", event, f"req-{number}"))

    threads = [threading.Thread(target=call, args=(number,)) for number in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    return answers


def test_invocations_at_once_are_spread_over_the_workers_and_all_run_meanwhile(
    pool: WorkerPool, tmp_path: Path
) -> None:
    answers = _at_once(pool, 4, tmp_path)
    assert [error for _, error in answers] == [None] * 4, answers
    pids = [result["pid"] for result, _ in answers]
    assert len(set(pids)) == 2 and all(pids.count(pid) == 2 for pid in pids)
    assert os.getpid() not in pids


def test_a_busy_environment_does_not_hold_the_worker(tmp_path: Path) -> None:
    """Two invocations of one function in one worker run at once (the second in an extra
    environment, as in the stack's own process: local/environments.py)."""
    pool = WorkerPool(1)
    try:
        answers = _at_once(pool, 2, tmp_path)
    finally:
        pool.close()
    assert [error for _, error in answers] == [None, None], answers
    assert len({result["pid"] for result, _ in answers}) == 1


def test_a_handler_error_answers_as_the_in_process_dispatch_does(pool: WorkerPool) -> None:
    lambda_dispatch.register("apranova-test-refuse", f"{HANDLERS}.refuse")
    try:
        in_process, in_process_error = lambda_dispatch.run("apranova-test-refuse", {"who": "x"})
        in_worker, worker_error = pool.invoke("apranova-test-refuse", f"{HANDLERS}:refuse", {"who": "x"}, "req")
    finally:
        lambda_dispatch.HANDLERS.pop("apranova-test-refuse", None)
    assert worker_error == in_process_error == "Unhandled"
    assert in_worker["errorType"] == in_process["errorType"] == "StepRefused"
    assert in_worker["errorMessage"] == in_process["errorMessage"] == "refused x"
    assert set(in_worker) == set(in_process) == {"errorType", "errorMessage", "stackTrace"}


def test_a_worker_that_dies_answers_runtime_exit_error_and_is_replaced(pool: WorkerPool) -> None:
    result, error = pool.invoke("apranova-test-die", f"{HANDLERS}:die", {}, "req-dead")
    assert error == "Unhandled"
    assert result["errorType"] == EXIT_ERROR
    assert "req-dead" in result["errorMessage"]
    for _ in range(3):  # the pool is whole again: every later invocation is answered
        answer, error = pool.invoke("apranova-test-echo", f"{HANDLERS}:echo", {}, "req")
        assert error is None and answer["pid"] != os.getpid()
    assert pool.replaced == 1 and len(pool.workers) == 2


def test_an_injected_fault_is_answered_before_any_worker_runs_the_handler() -> None:
    name = "apranova-test-faulty"
    lambda_dispatch.register(name, f"{HANDLERS}.echo")
    lambda_dispatch.use_worker_processes(1)
    try:
        lambda_dispatch.inject(name, "Lambda.TooManyRequestsException")
        result, error = lambda_dispatch.run(name, {"n": 1})
        assert error == "Unhandled" and result["errorType"] == "Lambda.TooManyRequestsException"
        assert lambda_dispatch.WORKERS is not None and lambda_dispatch.WORKERS.invocations == 0
        result, error = lambda_dispatch.run(name, {"n": 2})  # the next one reaches the handler
        assert error is None and result["event"] == {"n": 2} and result["pid"] != os.getpid()
    finally:
        lambda_dispatch.stop_worker_processes()
        lambda_dispatch.FAULTS.pop(name, None)
        lambda_dispatch.HANDLERS.pop(name, None)
