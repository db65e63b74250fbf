"""Webhook → enrolled with tools, in the local stack (docs/principles.md §7: ≤ 3 s).

``python -m local.stack`` (what ``make dev`` runs) is started as a process of its own, as the e2e
tests start it: its own state directory under a temporary directory, a free port and a fresh
database on the local PostgreSQL (dropped afterwards, with the students' database the stack makes
beside it and the login roles of the DP students it provisioned). Everything then goes over HTTP.

Each journey is a new student: registration, verification and login (``/api/auth/...``), then
``POST /api/payments/create-checkout-session/``. The clock starts when the Stripe emulator's test
control ``POST {stripe_url}/_test/checkout/sessions/{id}/pay`` is sent (it delivers the signed
events to the webhook before it answers: its own duration is the *webhook answered* time) and
stops when ``GET /api/auth/user/`` (polled every 50 ms) first shows ``tools_provisioned: true``
and ``enrollment_status: ENROLLED``. In between the enrollment workflow runs: the state machine CDK
synthesizes, executed by moto's Step Functions, its steps in-process, the tools real or emulated
as ``make dev`` has them. A journey that does not get there within 60 s, or whose provisioning
ends FAILED, is a failure.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import config
from bench.stats import percentile

ROOT = Path(__file__).resolve().parent.parent
TRACKS = ("DP", "FSD")
SUCCESS_CARD = "4242424242424242"
# Set by the bench itself or naming another stack's resources: never passed to the stack.
_DROPPED_PREFIXES = ("AWS_", "MOTO_", "POWERTOOLS_", "COGNITO_", "STRIPE_", "ENROLLMENT_", "DEPROVISION_")
_DROPPED_KEYS = frozenset(
    {"STAGE", "DATABASE_URL", "EMAIL_SENDER", "OPS_EMAIL", "SPA_ORIGIN", "SUPERSET_PORT", "SSM_PREFIX"}
)


# ---- pure helpers (tests/unit/test_bench_helpers.py) --------------------------------------------


def stack_environment(base: Mapping[str, str], *, state_dir: Path, port: int, database_url: str) -> dict[str, str]:
    """The stack process's environment: ``base`` without what the bench or another stack set."""
    env = {k: v for k, v in base.items() if not k.startswith(_DROPPED_PREFIXES) and k not in _DROPPED_KEYS}
    env.update({"PORT": str(port), "LOCAL_STATE_DIR": str(state_dir), "DATABASE_URL": database_url})
    return env


def enrollment_state(profile: Mapping[str, Any]) -> str:
    """``enrolled`` (the end of the clock), ``failed`` (provisioning gave up) or ``pending``."""
    if profile.get("tools_provisioned") is True and profile.get("enrollment_status") == "ENROLLED":
        return "enrolled"
    if profile.get("provisioning_status") == "FAILED":
        return "failed"
    return "pending"


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


@dataclass
class Journey:
    track: str
    outcome: str = "not run"  # enrolled | provisioning FAILED | timeout | error: ...
    webhook_s: float | None = None  # the pay control's own duration: the webhook has answered
    enrolled_s: float | None = None  # pay control sent → the profile shows enrolled with tools
    polls: int = 0
    user_id: str | None = None
    paid_at: float | None = None  # time.time() when the pay control was sent (this host's clock)
    server_s: float | None = None  # paid_at → users.provisioned_at, the server's own record

    def as_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "webhook_answered_s": _round(self.webhook_s),
            "webhook_to_enrolled_s": _round(self.enrolled_s),
            "profile_polls": self.polls,
            **({"server_recorded_s": _round(self.server_s)} if self.server_s is not None else {}),
        }


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "p50": round(percentile(values, 50), 3),
        "p95": round(percentile(values, 95), 3),
        "max": round(max(values), 3),
        "min": round(min(values), 3),
    }


@dataclass
class TrackResult:
    track: str
    target_p95_s: float = config.ENROLLMENT_P95_S
    journeys: list[Journey] = field(default_factory=list)
    error: str | None = None  # the track could not run at all

    @property
    def failures(self) -> int:
        return sum(1 for j in self.journeys if j.outcome != "enrolled")

    @property
    def enrolled_s(self) -> dict[str, float]:
        return _summary([j.enrolled_s for j in self.journeys if j.outcome == "enrolled" and j.enrolled_s is not None])

    @property
    def webhook_s(self) -> dict[str, float]:
        return _summary([j.webhook_s for j in self.journeys if j.webhook_s is not None])

    @property
    def passed(self) -> bool | None:
        """FAIL when the track could not run, on any failed journey, or on a p95 over the target."""
        if self.error or not self.journeys or self.failures:
            return False
        return self.enrolled_s["p95"] <= self.target_p95_s

    def outcomes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for journey in self.journeys:
            counts[journey.outcome] = counts.get(journey.outcome, 0) + 1
        return counts

    def as_json(self) -> dict[str, Any]:
        return {
            "journeys": len(self.journeys),
            "failures": self.failures,
            "error": self.error,
            "webhook_to_enrolled_s": self.enrolled_s,
            "webhook_answered_s": self.webhook_s,
            "target_p95_s": self.target_p95_s,
            "pass": self.passed,
            "outcomes": self.outcomes(),
            "runs": [j.as_json() for j in self.journeys],
        }


# ---- the stack ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    info: dict[str, Any]
    database_url: str
    started_s: float  # process start → stack.json written
    user_ids: list[str]  # the students the journeys made (their roles are dropped after)
    pid: int | None = None  # the stack's process (its CPU time is read from /proc)

    def url(self, path: str) -> str:
        return str(self.info["api_url"]) + path


class StackFailed(RuntimeError):
    pass


def _tail(log: Path, lines: int = 25) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextmanager
def local_stack(base_env: Mapping[str, str], start_timeout: float = config.STACK_START_TIMEOUT_S) -> Iterator[Stack]:
    """A ``python -m local.stack`` of its own; stopped (SIGINT, then wait) and its databases and
    student roles dropped on the way out, whatever happened."""
    from local.postgres import find_server

    server = find_server(ROOT / ".local" / "bench-postgres")
    name = f"apranova_bench_stack_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="apranova-bench-stack-") as tmp:
        state_dir, log_path = Path(tmp) / "state", Path(tmp) / "stack.log"
        url = server.create_database(name, exist_ok=False)
        process: subprocess.Popen[bytes] | None = None
        user_ids: list[str] = []
        try:
            port = _free_port()
            env = stack_environment(base_env, state_dir=state_dir, port=port, database_url=url)
            with log_path.open("wb") as log:
                started = time.monotonic()
                process = subprocess.Popen(
                    [sys.executable, "-m", "local.stack"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
                )
            info = _wait_for_stack(process, state_dir, log_path, start_timeout)
            yield Stack(info, url, time.monotonic() - started, user_ids, process.pid)
        finally:
            try:
                if process is not None:
                    _stop(process)
            finally:
                _drop(server, name, user_ids)


def _wait_for_stack(process: subprocess.Popen[bytes], state_dir: Path, log: Path, timeout: float) -> dict[str, Any]:
    stack_file = state_dir / "stack.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackFailed(f"the stack exited with {process.returncode}:\n{_tail(log)}")
        if stack_file.exists():
            return dict(json.loads(stack_file.read_text()))
        time.sleep(0.1)
    raise StackFailed(f"no stack.json after {timeout:.0f} s:\n{_tail(log)}")


def _stop(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _drop(server: Any, name: str, user_ids: list[str]) -> None:
    """The stack's two databases and the spare databases it kept, then the DP students' login roles
    (cluster-wide, so they would outlive the databases): deterministic names from the user ids,
    ``IF EXISTS``."""
    import psycopg
    from psycopg import sql

    from functions.provision.tools.student_database import names_for, spare_prefix

    server.drop_database(f"{name}_students")
    server.drop_database(name)
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        prefix = spare_prefix(f"{name}_students")
        for (spare,) in conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,)):
            server.drop_database(spare)
    if not user_ids:
        return
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        for user_id in user_ids:
            names = names_for(user_id, "/apranova/local")
            # A database of their own per DP student (owned by the role): it goes first.
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(names.database)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(names.role)))


# ---- the journeys -------------------------------------------------------------------------------


def _active_versions(database_url: str) -> dict[str, str]:
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT privacy_version_in_force(), terms_version_in_force()").fetchone()
    if row is None or None in row:
        raise StackFailed("no active privacy policy or terms in the stack's database")
    return {"privacy_version": str(row[0]), "terms_version": str(row[1])}


def _signed_in_student(session: Any, stack: Stack, versions: dict[str, str], track: str) -> dict[str, str]:
    email = f"bench.enrol.{track.lower()}.{uuid.uuid4().hex[:10]}@example.com"
    password = "Bench-" + secrets.token_urlsafe(12) + "1a!"
    registration = {"email": email, "password": password, "name": "Bench Enrolment", "accept_privacy": True}
    answer: Any = None
    for step, path, body in (
        ("registration", "/api/auth/registration/", {**registration, **versions}),
        ("verification", "/api/auth/verify-email/", None),  # the code Cognito mailed, from the mailbox
        ("login", "/api/auth/login/", {"email": email, "password": password}),
    ):
        if body is None:
            from local.cognito import mailed_code

            mailbox = session.get(stack.url("/_local/mailbox"), timeout=30).json()["items"]
            body = {"email": email, "code": mailed_code(mailbox, email)}
        answer = session.post(stack.url(path), json=body, timeout=30)
        if not answer.ok:
            raise StackFailed(f"{step} answered {answer.status_code}: {answer.text[:200]}")
    login = answer.json()
    return {"access": login["access"], "user_id": (login.get("user") or {}).get("id") or ""}


def run_journey(session: Any, stack: Stack, versions: dict[str, str], track: str) -> Journey:
    journey = Journey(track)
    try:
        student = _signed_in_student(session, stack, versions, track)
        if student["user_id"]:
            journey.user_id = student["user_id"]
            stack.user_ids.append(student["user_id"])
        headers = {"Authorization": f"Bearer {student['access']}"}
        created = session.post(
            stack.url("/api/payments/create-checkout-session/"), json={"track": track}, headers=headers, timeout=30
        )
        if created.status_code != 201:
            raise StackFailed(f"create-checkout-session answered {created.status_code}: {created.text[:200]}")
        pay_url = f"{stack.info['stripe_url']}/_test/checkout/sessions/{created.json()['session_id']}/pay"
        profile_url = stack.url("/api/auth/user/")

        started = time.perf_counter()
        paid = session.post(pay_url, json={"card": SUCCESS_CARD}, timeout=config.ENROLLMENT_TIMEOUT_S)
        journey.webhook_s = time.perf_counter() - started
        if not paid.ok:
            raise StackFailed(f"the pay control answered {paid.status_code}: {paid.text[:200]}")
        refused = [d for d in paid.json().get("deliveries", []) if d.get("status") != 200]
        if refused:
            raise StackFailed(f"webhook deliveries not answered 200: {refused}")

        deadline = started + config.ENROLLMENT_TIMEOUT_S
        while True:
            polled = time.perf_counter()
            profile = session.get(profile_url, headers=headers, timeout=10)
            answered = time.perf_counter()
            journey.polls += 1
            state = enrollment_state(profile.json()) if profile.ok else "pending"
            if state == "enrolled":
                journey.enrolled_s, journey.outcome = answered - started, "enrolled"
                return journey
            if state == "failed":
                journey.outcome = "provisioning FAILED"
                return journey
            if answered >= deadline:
                journey.outcome = "timeout"
                return journey
            time.sleep(max(0.0, config.ENROLLMENT_POLL_S - (time.perf_counter() - polled)))
    except Exception as error:  # noqa: BLE001 - a journey that could not run is a failure, the rest go on
        journey.outcome = f"error: {type(error).__name__}: {str(error)[:300]}"
        return journey


@dataclass
class EnrollmentRun:
    tracks: list[TrackResult]
    journeys_per_track: int
    load_start: tuple[float, float, float] | None
    load_end: tuple[float, float, float] | None = None
    stack_start_s: float | None = None
    duration_s: float | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "journeys_per_track": self.journeys_per_track,
            "poll_interval_s": config.ENROLLMENT_POLL_S,
            "timeout_s": config.ENROLLMENT_TIMEOUT_S,
            "load_average_at_start": list(self.load_start) if self.load_start else None,
            "load_average_at_end": list(self.load_end) if self.load_end else None,
            "stack_start_s": _round(self.stack_start_s, 1),
            "duration_s": _round(self.duration_s, 1),
            "error": self.error,
            "tracks": {t.track: t.as_json() for t in self.tracks},
        }


def _load() -> tuple[float, float, float] | None:
    if not hasattr(os, "getloadavg"):
        return None
    one, five, fifteen = os.getloadavg()
    return (round(one, 2), round(five, 2), round(fifteen, 2))


def measure(base_env: Mapping[str, str], journeys: int = config.ENROLLMENT_JOURNEYS) -> EnrollmentRun:
    """``journeys`` per track, the tracks alternating (so drift in the machine's load hits both)."""
    import requests

    began = time.monotonic()
    run = EnrollmentRun([TrackResult(track) for track in TRACKS], journeys, _load())
    try:
        with local_stack(base_env) as stack, requests.Session() as session:
            run.stack_start_s = stack.started_s
            versions = _active_versions(stack.database_url)
            for _ in range(journeys):
                for result in run.tracks:
                    result.journeys.append(run_journey(session, stack, versions, result.track))
    except Exception as error:  # noqa: BLE001 - a section that could not run says why; the bench goes on
        run.error = f"{type(error).__name__}: {error}"
        for result in run.tracks:  # a failure after the journeys (the clean-up) does not void them
            if len(result.journeys) < journeys:
                result.error = result.error or run.error.splitlines()[0]
    run.load_end = _load()
    run.duration_s = time.monotonic() - began
    return run


# ---- many payers at once ------------------------------------------------------------------------

CONCURRENT_PAYERS = 50  # half each track, all paying at the same moment
CONCURRENT_P95_S = 5.0  # payment → enrolled with tools (server-recorded), on this 2-core machine
# What the web app's return page does (web/src/pages/public/Checkout.tsx, PaymentReturn): one request
# every 1.5 s, GET /api/payments/verify-session/ until enrolled, then GET /api/auth/user/ until the
# tools are ready.
CONCURRENT_POLL_S = 1.5


def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU time (user + system, seconds) of ``pid`` itself and of its descendants now alive, from
    /proc: ``{"stack": ..., "workers": ..., "other": ...}`` (workers: the Lambda environment
    processes of ``local.lambda_workers``; other: the tools the stack started). Empty off Linux."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        child = int(entry.name)
        parents[child] = int(fields[1])
        times[child] = (int(fields[11]) + int(fields[12])) / ticks
        commands[child] = command
    if pid not in times:
        return {}
    out = {"stack": times[pid], "workers": 0.0, "other": 0.0}
    for child in times:
        ancestor = parents.get(child)
        while ancestor and ancestor != pid:
            ancestor = parents.get(ancestor)
        if ancestor == pid:
            out["workers" if "local.lambda_workers" in commands[child] else "other"] += times[child]
    return out


@dataclass
class ConcurrentRun:
    payers: int
    journeys: list[Journey] = field(default_factory=list)
    target_p95_s: float = CONCURRENT_P95_S
    poll_interval_s: float = CONCURRENT_POLL_S
    load_start: tuple[float, float, float] | None = None
    load_end: tuple[float, float, float] | None = None
    duration_s: float | None = None
    burst_s: float | None = None  # the payments sent → the last payer seen enrolled
    cpu_s: dict[str, float] = field(default_factory=dict)  # the stack's processes' CPU over the burst
    error: str | None = None

    @property
    def failures(self) -> int:
        missing = self.payers - len(self.journeys)
        unrecorded = sum(1 for j in self.journeys if j.outcome == "enrolled" and j.server_s is None)
        return sum(1 for j in self.journeys if j.outcome != "enrolled") + missing + unrecorded

    @property
    def server_s(self) -> dict[str, float]:
        """Payment → ``users.provisioned_at``: what the target applies to."""
        return _summary([j.server_s for j in self.journeys if j.outcome == "enrolled" and j.server_s is not None])

    @property
    def enrolled_s(self) -> dict[str, float]:
        """Payment → the first poll that saw the student enrolled with tools (what the web app shows)."""
        return _summary([j.enrolled_s for j in self.journeys if j.outcome == "enrolled" and j.enrolled_s is not None])

    @property
    def webhook_s(self) -> dict[str, float]:
        return _summary([j.webhook_s for j in self.journeys if j.webhook_s is not None])

    @property
    def cpu_per_enrollment_s(self) -> dict[str, float]:
        enrolled = sum(1 for j in self.journeys if j.outcome == "enrolled")
        if not self.cpu_s or not enrolled:
            return {}
        return {key: round(value / enrolled, 3) for key, value in self.cpu_s.items()}

    @property
    def passed(self) -> bool:
        if self.error or self.failures or not self.journeys:
            return False
        return self.server_s["p95"] <= self.target_p95_s

    def outcomes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for journey in self.journeys:
            counts[journey.outcome] = counts.get(journey.outcome, 0) + 1
        return counts

    def as_json(self) -> dict[str, Any]:
        return {
            "payers": self.payers,
            "failures": self.failures,
            "error": self.error,
            "payment_to_provisioned_server_s": self.server_s,
            "webhook_to_enrolled_s": self.enrolled_s,
            "webhook_answered_s": self.webhook_s,
            "target_p95_s": self.target_p95_s,
            "target_applies_to": "payment_to_provisioned_server_s",
            "pass": self.passed,
            "outcomes": self.outcomes(),
            "poll_interval_s": self.poll_interval_s,
            "burst_s": _round(self.burst_s, 1),
            "cpu_during_burst_s": {key: round(value, 2) for key, value in self.cpu_s.items()},
            "cpu_per_enrollment_s": self.cpu_per_enrollment_s,
            "load_average_at_start": list(self.load_start) if self.load_start else None,
            "load_average_at_end": list(self.load_end) if self.load_end else None,
            "duration_s": _round(self.duration_s, 1),
            "runs": [j.as_json() for j in self.journeys],
        }


def _pay_and_wait(stack: Stack, prepared: dict[str, Any], barrier: Any, poll_s: float = CONCURRENT_POLL_S) -> Journey:
    """One payer: waits for the others, pays, then follows its enrollment as the web app's return
    page does, one request per ``poll_s``: its checkout session until enrolled, then its profile
    until the tools are ready."""
    import requests

    journey = Journey(prepared["track"], user_id=prepared["user_id"])
    headers = {"Authorization": f"Bearer {prepared['access']}"}
    with requests.Session() as session:
        try:
            barrier.wait(timeout=120)
            journey.paid_at = time.time()
            started = time.perf_counter()
            paid = session.post(prepared["pay_url"], json={"card": SUCCESS_CARD}, timeout=config.ENROLLMENT_TIMEOUT_S)
            journey.webhook_s = time.perf_counter() - started
            # An event is refused when none of its attempts was answered 200 (a first attempt that timed
            # out under the burst and a retry that got through is Stripe's normal redelivery).
            deliveries = paid.json().get("deliveries", []) if paid.ok else []
            delivered = {d["event_id"] for d in deliveries if d.get("status") == 200}
            refused = [d for d in deliveries if d["event_id"] not in delivered] if paid.ok else [paid.text]
            if refused:
                raise StackFailed(f"webhook deliveries not answered 200: {str(refused)[:200]}")
            deadline = started + config.ENROLLMENT_TIMEOUT_S
            session_url = stack.url(f"/api/payments/verify-session/?session_id={prepared['session_id']}")
            enrolled = False
            while True:
                polled = time.perf_counter()
                state = "pending"
                if not enrolled:
                    status = session.get(session_url, timeout=30)
                    enrolled = status.ok and status.json().get("enrolled") is True
                # The profile once enrolled: at once when the session says so (the page then
                # refetches it), every tick after that.
                if enrolled:
                    profile = session.get(stack.url("/api/auth/user/"), headers=headers, timeout=30)
                    state = enrollment_state(profile.json()) if profile.ok else "pending"
                answered = time.perf_counter()
                journey.polls += 1
                if state == "enrolled" and enrolled:
                    journey.enrolled_s, journey.outcome = answered - started, "enrolled"
                    return journey
                if state == "failed" or answered >= deadline:
                    journey.outcome = "provisioning FAILED" if state == "failed" else "timeout"
                    return journey
                time.sleep(max(0.0, poll_s - (time.perf_counter() - polled)))
        except Exception as error:  # noqa: BLE001 - one payer's failure is counted, the others go on
            journey.outcome = f"error: {type(error).__name__}: {str(error)[:300]}"
            return journey


def _server_recorded(database_url: str, journeys: list[Journey]) -> None:
    """Each enrolled journey's ``server_s``: ``users.provisioned_at`` (written by UnlockFirstProject
    in the transaction that sets ``tools_provisioned``) less the moment it paid, both this host's clock."""
    import psycopg

    ids = [j.user_id for j in journeys if j.user_id and j.paid_at is not None]
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT id::text, extract(epoch FROM provisioned_at)::float8 FROM users"
            " WHERE id = ANY(%s::uuid[]) AND provisioned_at IS NOT NULL",
            (ids,),
        ).fetchall()
    provisioned = {user_id: at for user_id, at in rows}
    for journey in journeys:
        at = provisioned.get(journey.user_id or "")
        if at is not None and journey.paid_at is not None:
            journey.server_s = at - journey.paid_at


def measure_concurrent(
    base_env: Mapping[str, str], payers: int = CONCURRENT_PAYERS, poll_s: float = CONCURRENT_POLL_S
) -> ConcurrentRun:
    """``payers`` new students (half each track) sign up and open a checkout, then all pay at the
    same moment; each one's clock runs from its pay control until the server recorded its tools
    provisioned (and, separately, until its polls saw it)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import requests

    began = time.monotonic()
    run = ConcurrentRun(payers, poll_interval_s=poll_s, load_start=_load())
    try:
        with local_stack(base_env) as stack:
            versions = _active_versions(stack.database_url)

            def prepare(index: int) -> dict[str, Any]:
                track = TRACKS[index % len(TRACKS)]
                with requests.Session() as session:
                    student = _signed_in_student(session, stack, versions, track)
                    stack.user_ids.append(student["user_id"])
                    created = session.post(
                        stack.url("/api/payments/create-checkout-session/"),
                        json={"track": track},
                        headers={"Authorization": f"Bearer {student['access']}"},
                        timeout=60,
                    )
                    if created.status_code != 201:
                        raise StackFailed(f"create-checkout-session answered {created.status_code}")
                session_id = created.json()["session_id"]
                return {
                    **student,
                    "track": track,
                    "session_id": session_id,
                    "pay_url": f"{stack.info['stripe_url']}/_test/checkout/sessions/{session_id}/pay",
                }

            # Sign-ups and checkouts one after another (not what is measured); the payments all at once.
            prepared = [prepare(index) for index in range(payers)]
            barrier = threading.Barrier(payers)
            cpu_before = cpu_seconds(stack.pid) if stack.pid else {}
            burst = time.monotonic()
            with ThreadPoolExecutor(payers) as pool:
                run.journeys = list(pool.map(lambda p: _pay_and_wait(stack, p, barrier, poll_s), prepared))
            run.burst_s = time.monotonic() - burst
            cpu_after = cpu_seconds(stack.pid) if stack.pid else {}
            run.cpu_s = {key: cpu_after[key] - cpu_before.get(key, 0.0) for key in cpu_after}
            _server_recorded(stack.database_url, run.journeys)
    except Exception as error:  # noqa: BLE001 - a section that could not run says why; the bench goes on
        run.error = f"{type(error).__name__}: {str(error)[:300]}"
    run.load_end = _load()
    run.duration_s = time.monotonic() - began
    return run
