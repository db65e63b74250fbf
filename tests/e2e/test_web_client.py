"""What a web client on the SPA's origin meets, over the whole local stack (``python -m local.stack``):
a browser's preflight is answered as the deployed HTTP API answers it, and a trainer downloads the
exact bytes the student uploaded (presigned form in, presigned link out, S3 in moto)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from local.cognito import mailed_code
from tests.e2e.test_local_stack import Stack, _free_port

SPA = "http://127.0.0.1:5173"  # the local stack's SPA origin (apranova.cors.LOCAL_SPA_ORIGIN)
REPORT = b"%PDF-1.4\n% Pat's insights report\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"
PASSWORD = "Web-Client-42!x"


# --- a student as a person becomes one: sign up with the mailed code, pay on the emulator -----------


def _student(stack: Stack) -> dict[str, Any]:
    versions = {
        "privacy_version": requests.get(stack.url("/api/compliance/privacy-policy/"), timeout=10).json()["version"],
        "terms_version": requests.get(stack.url("/api/compliance/terms/"), timeout=10).json()["version"],
    }
    email = f"web-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": PASSWORD, "name": "Pat Web", "accept_privacy": True, **versions}
    registered = requests.post(stack.url("/api/auth/registration/"), json=body, timeout=60)
    assert registered.status_code == 201, registered.text
    code = mailed_code(requests.get(stack.url("/_local/mailbox"), timeout=30).json()["items"], email)
    verified = requests.post(stack.url("/api/auth/verify-email/"), json={"email": email, "code": code}, timeout=60)
    assert verified.ok, verified.text
    login = requests.post(stack.url("/api/auth/login/"), json={"email": email, "password": PASSWORD}, timeout=60)
    assert login.status_code == 200, login.text
    return {"email": email, "auth": {"Authorization": f"Bearer {login.json()['access']}"}}


def _enroll(stack: Stack, student: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
    created = requests.post(
        stack.url("/api/payments/create-checkout-session/"), json={"track": "DP"}, headers=student["auth"], timeout=60
    )
    assert created.status_code == 201, created.text
    paid = requests.post(
        f"{stack.info['stripe_url']}/_test/checkout/sessions/{created.json()['session_id']}/pay",
        json={"card": "4242424242424242"},
        timeout=120,
    )
    assert paid.status_code == 200, paid.text
    deadline = time.monotonic() + timeout
    while True:
        profile = requests.get(stack.url("/api/auth/user/"), headers=student["auth"], timeout=30).json()
        done = profile.get("enrollment_status") == "ENROLLED" and profile.get("tools_provisioned")
        if done or profile.get("provisioning_status") == "FAILED" or time.monotonic() > deadline:
            return profile
        time.sleep(0.5)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, make_database) -> Iterator[Stack]:
    state: Path = tmp_path_factory.mktemp("web-client") / "state"
    started = Stack(state, make_database("apranova_e2e_web"), _free_port())
    yield started
    started.stop(timeout=30)
    started.drop_students_database()


def test_a_browser_preflight_from_the_spa_origin(stack: Stack) -> None:
    asked = {"Origin": SPA, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    answer = requests.options(stack.url("/api/auth/login/"), headers=asked, timeout=10)
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == SPA
    assert answer.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in answer.headers["Access-Control-Allow-Methods"].split(",")
    assert "content-type" in answer.headers["Access-Control-Allow-Headers"].split(",")
    other = requests.options(
        stack.url("/api/auth/login/"), headers={**asked, "Origin": "https://elsewhere.example"}, timeout=10
    )
    assert other.status_code == 204 and "Access-Control-Allow-Origin" not in other.headers
    tracks = requests.get(stack.url("/api/curriculum/tracks/"), headers={"Origin": SPA}, timeout=10)
    assert tracks.status_code == 200 and tracks.headers["Access-Control-Allow-Origin"] == SPA


def test_a_trainer_downloads_the_exact_bytes_a_student_uploaded(stack: Stack) -> None:
    pat = _student(stack)
    profile = _enroll(stack, pat)
    assert profile["enrollment_status"] == "ENROLLED", profile

    projects = requests.get(stack.url("/api/curriculum/projects/"), headers=pat["auth"], timeout=30).json()["items"]
    first = projects[0]["id"]
    started = requests.post(stack.url(f"/api/curriculum/projects/{first}/start/"), headers=pat["auth"], timeout=30)
    assert started.status_code == 200, started.text
    detail = requests.get(stack.url(f"/api/curriculum/projects/{first}/"), headers=pat["auth"], timeout=30).json()
    (report,) = [d for d in detail["deliverables"] if d["deliverable_type"] == "FILE"][:1]

    form = requests.post(
        stack.url("/api/curriculum/submissions/upload-url/"),
        headers=pat["auth"],
        json={"deliverable_id": report["id"], "filename": "report.pdf", "content_type": "application/pdf",
              "size": len(REPORT)},
        timeout=30,
    )  # fmt: skip
    assert form.status_code == 200, form.text
    upload = requests.post(
        form.json()["url"],
        data=form.json()["fields"],
        files={"file": ("report.pdf", REPORT, "application/pdf")},
        timeout=30,
    )
    assert upload.status_code == 204, upload.text
    submitted = requests.post(
        stack.url("/api/curriculum/submissions/"),
        headers=pat["auth"],
        json={"deliverable_id": report["id"], "file_key": form.json()["key"]},
        timeout=30,
    )
    assert submitted.status_code == 201, submitted.text

    trainer = stack.info["dev_users"]["trainer_dp"]
    login = requests.post(stack.url("/api/auth/login/"), json=trainer, timeout=30)
    assert login.status_code == 200, login.text
    coach = {"Authorization": f"Bearer {login.json()['access']}"}
    opened = requests.get(stack.url(f"/api/trainer/submissions/{submitted.json()['id']}/"), headers=coach, timeout=30)
    assert opened.status_code == 200, opened.text
    assert opened.json()["student_email"] == pat["email"] and opened.json()["file_name"] == "report.pdf"
    downloaded = requests.get(opened.json()["file_url"], timeout=30)
    assert downloaded.status_code == 200 and downloaded.content == REPORT
