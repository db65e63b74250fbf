"""Issue 19: the workspaces behind one authenticated front door, in ``python -m local.stack``
(what ``make dev`` runs), over real HTTP.

Two FSD students pay on the Stripe emulator and are enrolled by the real workflow; each starts
their workspace with the tools API, which starts a task in moto's ECS, and the stack starts a
stand-in server for it. The link the API gives is the front door's, never a private address. The
front door signs the student in (the API's login behind its sign-in page) and passes an ES256-signed
identity to the workspace proxy (proxy/workspace_proxy, the code of the deployed proxy service),
which verifies it against the door's published key and forwards only to the signed-in student's
own task: A reaches A's and nothing A sends reaches B's; a stopped workspace is a prompt 503.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.e2e.test_local_stack import Stack, _free_port
from tests.e2e.test_money_chain import PASSWORD, _checkout, _pay, _student, _versions, _wait_enrolled

OWNER = re.compile(r"<code id='owner'>([0-9a-f-]{36})</code>")


@pytest.fixture(scope="module")
def door_stack(tmp_path_factory: pytest.TempPathFactory, make_database) -> Iterator[Stack]:
    state: Path = tmp_path_factory.mktemp("workspace-door") / "state"
    started = Stack(state, make_database("apranova_e2e_door"), _free_port())
    yield started
    started.stop(timeout=30)
    started.drop_students_database()


@pytest.fixture(scope="module")
def fsd_students(door_stack: Stack) -> dict[str, dict[str, Any]]:
    """Students A and B, FSD, paid and enrolled, their workspaces provisioned (not started)."""
    stack = door_stack
    versions = _versions(stack)
    made = {name: _student(stack, versions) for name in ("a", "b")}
    for student in made.values():
        _pay(stack, _checkout(stack, student, "FSD")["session_id"])
    for student in made.values():
        profile = _wait_enrolled(stack, student)
        assert (profile.get("enrollment_status"), profile.get("provisioning_status")) == ("ENROLLED", "SUCCEEDED")
    return made


def _start(stack: Stack, student: dict[str, Any]) -> dict[str, Any]:
    started = requests.post(stack.url("/api/tools/workspace/start/"), headers=student["auth"], timeout=60)
    assert started.status_code == 200, started.text
    return started.json()


def _signed_in(stack: Stack, email: str, password: str = PASSWORD) -> requests.Session:
    """A browser session on the front door, signed in through its sign-in page."""
    door = stack.info["workspace_url"]
    session = requests.Session()
    page = session.get(door + "/oauth2/sign-in?next=%2F", timeout=30)
    assert page.status_code == 200 and "<form" in page.text
    signed = session.post(
        door + "/oauth2/sign-in",
        data={"email": email, "password": password, "next": "/"},
        allow_redirects=False,
        timeout=60,
    )
    assert signed.status_code == 302 and signed.headers["Location"] == "/", signed.text
    assert "HttpOnly" in signed.headers["Set-Cookie"]
    return session


def _owner(response: requests.Response) -> str | None:
    found = OWNER.search(response.text)
    return found.group(1) if found else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def _forged_identity(user_id: str, signer: str) -> str:
    """An ALB-shaped identity token naming ``user_id``, signed with a key that is not the door's."""
    key = ec.generate_private_key(ec.SECP256R1())
    exp = int(time.time()) + 60
    header = {"alg": "ES256", "kid": str(uuid.uuid4()), "signer": signer, "exp": exp}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps({'sub': user_id, 'exp': exp}).encode())}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_a_reaches_only_their_own_workspace_and_a_stopped_one_is_a_prompt_503(door_stack, fsd_students) -> None:
    stack, a, b = door_stack, fsd_students["a"], fsd_students["b"]
    door, proxy = stack.info["workspace_url"], stack.info["workspace_proxy_url"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", door) and door != proxy

    # The links the API gives are the front door's, never a task's private address.
    for student in (a, b):
        started = _start(stack, student)
        assert started["status"] in ("STARTING", "RUNNING")
        access = requests.get(stack.url("/api/tools/workspace-access/"), headers=student["auth"], timeout=30).json()
        assert access["status"] == "RUNNING" and access["url"] == f"{door}/", access
        assert not re.search(r"\b10\.\d+\.\d+\.\d+\b", json.dumps(access))

    # Nobody signed in: the door sends the browser to sign in (nothing reaches a workspace).
    anonymous = requests.get(door + "/?folder=/home/coder", allow_redirects=False, timeout=30)
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"] == "/oauth2/sign-in?next=%2F%3Ffolder%3D%2Fhome%2Fcoder"
    wrong = requests.post(
        door + "/oauth2/sign-in", data={"email": a["email"], "password": "not-it-42!", "next": "/"}, timeout=60
    )
    assert wrong.status_code == 401 and "Set-Cookie" not in wrong.headers

    # A signed in reaches A's workspace, path and query intact.
    as_a = _signed_in(stack, a["email"])
    mine = as_a.get(door + "/?folder=/home/coder", timeout=30)
    assert mine.status_code == 200, mine.text
    assert _owner(mine) == a["id"] and mine.headers["X-Workspace-Owner"] == a["id"]
    assert "GET /?folder=/home/coder" in mine.text

    # Whatever A sends that names B, A gets A's workspace or a refusal, never B's.
    for attempt in (
        {"headers": {"x-amzn-oidc-identity": b["id"]}},
        {"headers": {"x-amzn-oidc-data": _forged_identity(b["id"], "anything")}},
        {"path": f"/{b['id']}/"},
        {"path": f"/?folder=/students/{b['id']}"},
    ):
        seen = as_a.get(door + attempt.get("path", "/"), headers=attempt.get("headers"), timeout=30)
        assert seen.status_code == 200 and _owner(seen) == a["id"], (attempt, seen.status_code, seen.text)

    # Straight at the proxy (in AWS only the load balancer can reach it): it trusts nothing unsigned.
    assert requests.get(proxy + "/", timeout=30).status_code == 401
    assert requests.get(proxy + "/", headers={"x-amzn-oidc-identity": b["id"]}, timeout=30).status_code == 401
    forged = requests.get(proxy + "/", headers={"x-amzn-oidc-data": _forged_identity(b["id"], "x")}, timeout=30)
    assert forged.status_code == 401 and "not signed by our load balancer" in forged.text
    # Named as the door's signer but signed with another key: the signature decides.
    from local.workspace_door import LOAD_BALANCER_ARN

    as_door = requests.get(
        proxy + "/", headers={"x-amzn-oidc-data": _forged_identity(b["id"], LOAD_BALANCER_ARN)}, timeout=30
    )
    assert as_door.status_code == 401, as_door.text

    # Someone signed in without a workspace (a trainer): 403.
    trainer = stack.info["dev_users"]["trainer_fsd"]
    as_trainer = _signed_in(stack, trainer["email"], trainer["password"])
    refused = as_trainer.get(door + "/", timeout=30)
    assert refused.status_code == 403 and "no workspace" in refused.text

    # B reaches B's.
    as_b = _signed_in(stack, b["email"])
    assert _owner(as_b.get(door + "/", timeout=30)) == b["id"]

    # A stops: A's next request is a prompt, clear 503 (no hang), and A's stand-in goes away; B's stays.
    a_port = _stand_in_port(stack, a["id"])
    stopped = requests.post(stack.url("/api/tools/workspace/stop/"), headers=a["auth"], timeout=60)
    assert stopped.status_code == 200, stopped.text
    began = time.monotonic()
    after = as_a.get(door + "/", timeout=30)
    assert after.status_code == 503 and "not running" in after.text and after.headers.get("Retry-After")
    assert time.monotonic() - began < 10
    deadline = time.monotonic() + 15
    while _port_open(a_port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _port_open(a_port), "the stopped workspace's stand-in still answers"
    assert _owner(as_b.get(door + "/", timeout=30)) == b["id"]

    # A starts again: a new stand-in, reached through the same link.
    _start(stack, a)
    again = as_a.get(door + "/", timeout=30)
    assert again.status_code == 200 and _owner(again) == a["id"]


def _stand_in_port(stack: Stack, user_id: str) -> int:
    """The loopback port of ``user_id``'s stand-in, from the stack's log line."""
    stack.log.flush()
    found = re.findall(rf"workspace stand-in of {user_id} on port (\d+)", Path(stack.log.name).read_text())
    assert found, stack.output()
    return int(found[-1])
