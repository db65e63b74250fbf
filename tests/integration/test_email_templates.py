"""Every email the system sends, rendered, sent through SES and read back: a plain-text part and an
HTML part, each link well formed, clickable only when its sender built it, leading to a page of the web
app (``apranova.spa.PAGES``) or to a student's tool, and the same links in the text as in the HTML.

A source scan keeps the list whole: a new function that builds an ``Email`` fails here until it is
rendered below. (Cognito's code emails carry no link: tests/integration/test_local_cognito.py.)
"""

from __future__ import annotations

import ast
import datetime as dt
import os
import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from apranova import alerts, mail, spa
from apranova.learning import Learner
from local.moto_stack import mailbox

ROOT = Path(__file__).resolve().parents[2]
SPA = "http://127.0.0.1:5173"
SENDER = "no-reply@apranova.test"
TOOLS = ("http://127.0.0.1:8000/hub/", "http://127.0.0.1:4200/", "http://127.0.0.1:8088/")
ATTACK = "Ada https://evil.example/x"
TO = "student@example.com"


def _payment(**changes: Any) -> dict[str, Any]:
    return {
        "amount_cents": 49900,
        "currency": "usd",
        "track": "DP",
        "track_name": "Data Professional",
        "status": "APPROVED",
        **changes,
    }


def _submission(status: str) -> dict[str, Any]:
    return {
        "student_email": TO,
        "student_name": ATTACK,
        "deliverable_title": "Schema design",
        "attempt": 2,
        "project_number": 1,
        "project_title": "Foundations",
        "status": status,
        "feedback": "See https://evil.example/fix",
    }


def _emails() -> dict[str, Callable[[], mail.Email]]:
    from functions.auth.service import someone_tried_to_register
    from functions.compliance.erasure import service as erasure_service
    from functions.compliance.export import service as export_service
    from functions.payments import emails as payments
    from functions.provision.steps import welcome_email
    from functions.submissions import service as submissions
    from functions.submissions.config import SubmissionSettings
    from functions.trainer import emails as trainer

    contact = {"email": TO, "name": ATTACK}
    learner = Learner(user_id="u1", email=TO, name=ATTACK, track="DP", track_id=1, enrollment_status="ENROLLED")
    target = {"project_id": 7, "project_number": 1, "project_title": "Foundations", "deliverable_title": "Schema"}
    config = SubmissionSettings(uploads_bucket="apranova-uploads", spa_origin=SPA)
    tools = [
        {"tool": "JUPYTER", "status": "SUCCEEDED", "access_url": TOOLS[0]},
        {"tool": "PREFECT", "status": "SUCCEEDED", "access_url": TOOLS[1]},
        {"tool": "SUPERSET", "status": "SUCCEEDED", "access_url": TOOLS[2]},
        {"tool": "STUDENT_DATABASE", "status": "SUCCEEDED", "access_url": None},
    ]
    account = {"email": TO, "name": ATTACK}
    soon = dt.datetime(2027, 1, 2, 3, 4, tzinfo=dt.UTC)

    def alert() -> mail.Email:
        os.environ["OPS_EMAIL"] = "ops@apranova.test"
        alerts.reset()
        sent: list[mail.Email] = []
        original = mail.send
        mail.send = sent.append  # type: ignore[assignment] - catch the email the alert builds
        try:
            alerts.alert("Provisioning failed", {"user_id": "u1"})
        finally:
            mail.send = original  # type: ignore[assignment]
        return sent[0]

    return {
        "functions.auth.service:someone_tried_to_register": lambda: someone_tried_to_register(TO, SPA),
        "functions.payments.emails:payment_failed": lambda: payments.payment_failed(contact, _payment(), SPA),
        "functions.payments.emails:set_password": lambda: payments.set_password(contact, _payment(), SPA),
        "functions.payments.emails:refund_requested": lambda: payments.refund_requested(contact, _payment()),
        "functions.payments.emails:refund_decided": lambda: payments.refund_decided(contact, _payment()),
        "functions.payments.emails:refund_decided (declined)": lambda: payments.refund_decided(
            contact, _payment(status="REJECTED", decision_reason=ATTACK)
        ),
        "functions.payments.emails:payment_refunded_unfulfillable": lambda: payments.payment_refunded_unfulfillable(
            TO, _payment(), "account_exists", SPA
        ),
        "functions.trainer.emails:review_result": lambda: trainer.review_result(_submission("APPROVED"), SPA),
        "functions.trainer.emails:review_result (changes)": lambda: trainer.review_result(
            _submission("CHANGES_REQUESTED"), SPA
        ),
        "functions.trainer.emails:project_unlocked": lambda: trainer.project_unlocked(
            _submission("APPROVED"), {"number": 2, "title": "Pipelines"}, SPA
        ),
        "functions.trainer.emails:track_completed": lambda: trainer.track_completed(
            _submission("APPROVED"), {"title": "Capstone", "track_name": "Data Professional"}, SPA
        ),
        "functions.submissions.service:received_by_student": lambda: submissions.received_by_student(
            learner, target, {"attempt": 2}, config
        ),
        "functions.submissions.service:received_by_trainer": lambda: submissions.received_by_trainer(
            {"email": "trainer@example.com", "name": "Tess"}, learner, target, {"attempt": 2}, config
        ),
        "functions.compliance.export.service:ready_email": lambda: export_service.ready_email(
            account, {"expires_at": soon}, spa.page(SPA, "privacy")
        ),
        "functions.compliance.erasure.service:scheduled_email": lambda: erasure_service.scheduled_email(
            account, soon, SPA
        ),
        "functions.compliance.erasure.service:cancelled_email": lambda: erasure_service.cancelled_email(account, SPA),
        "functions.provision.steps.welcome_email:render": lambda: welcome_email.render(
            {"email": TO, "name": "Ada", "email_verified": True},
            "Data Professional",
            {"number": 1, "title": "Foundations"},
            tools,
            SPA,
        ),
        "apranova.alerts:alert_email": lambda: alerts.alert_email(
            "ops@apranova.test", "local", "Provisioning failed", {"user_id": "u1"}
        ),
    }


EMAILS = _emails()


def _builders_in_source() -> set[str]:
    """module:function for every function in the code that builds an Email."""
    found = set()
    sources = [*(ROOT / "functions").rglob("*.py"), *(ROOT / "layers/common/python/apranova").rglob("*.py")]
    for path in sources:
        tree = ast.parse(path.read_text())
        relative = path.relative_to(ROOT / "layers/common/python" if "layers" in path.parts else ROOT)
        module = ".".join(relative.with_suffix("").parts)
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Call):
                    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                    if name == "Email":
                        found.add(f"{module}:{function.name}")
    return found


def test_every_email_the_code_builds_is_rendered_here() -> None:
    rendered = {key.split(" (")[0] for key in EMAILS}
    assert _builders_in_source() == rendered


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href, self._text = dict(attrs).get("href") or "", ""

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.anchors.append((self._href, self._text))
            self._href = None


URL = re.compile(r"https?://[^\s<>\"']+")


def _urls(text: str) -> set[str]:
    return {url.rstrip(".,;:!?)") for url in URL.findall(text)}


@pytest.fixture(scope="module")
def ses() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMAIL_SENDER", SENDER)
        mp.delenv("EMAIL_CONFIGURATION_SET", raising=False)
        with mock_aws():
            boto3.client("ses", region_name=os.environ["AWS_REGION"]).verify_email_identity(EmailAddress=SENDER)
            mail.reset()
            yield
            mail.reset()


@pytest.mark.parametrize("name", list(EMAILS))
def test_the_email_has_both_parts_and_every_link_leads_to_a_page_or_a_tool(ses, name: str) -> None:
    email = EMAILS[name]()
    message_id = mail.send(email)
    (sent,) = [m for m in mailbox() if m["id"] == message_id]

    assert sent["subject"] == email.subject and "\n" not in email.subject
    assert sent["body_text"] == email.text  # the plain-text part SES got
    anchors = _Anchors()
    anchors.feed(sent["body_html"])
    hrefs = [href for href, _text in anchors.anchors]
    for href, text in anchors.anchors:
        assert text == href and href in email.links, (href, text)
        assert spa.route_of(href, SPA) is not None or href in TOOLS, f"{href} is no page of the web app nor a tool"
    # Every link the sender built is clickable, and the text carries the same ones.
    assert set(hrefs) == set(email.links)
    assert _urls(email.text) & set(email.links) == set(email.links)
    assert "evil.example" not in "".join(hrefs)
    # No code, no track code standing in for its name.
    assert "— DP" not in email.subject and "— FSD" not in email.subject
    assert "DP track" not in email.text and "FSD track" not in email.text


def test_the_welcome_email_names_the_track_and_lists_each_tool_as_its_own_link(ses) -> None:
    email = EMAILS["functions.provision.steps.welcome_email:render"]()
    assert email.subject == "Welcome to ApraNova — Data Professional"
    html = email.html
    for tool in TOOLS:
        assert f'<a href="{tool}">{tool}</a>' in html
    assert '<br>-"' not in html and '<br>"' not in html


def test_the_set_password_email_opens_the_page_with_the_address_filled_in(ses) -> None:
    email = EMAILS["functions.payments.emails:set_password"]()
    assert email.links == (f"{SPA}/set-password?email=student%40example.com",)
    assert spa.route_of(email.links[0], SPA) == "set_password"
