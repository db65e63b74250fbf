"""The emails a review promises the student, rendered here: the review result, the next project
unlocked, the track completed. No secrets: the only link is the SPA's dashboard, and it is the only
word made a link. The student's name is the student's own, sent to their own verified address, as
plain text on one line (``mail.plain``)."""

from __future__ import annotations

from typing import Any

from apranova.mail import Email, plain


def _hello(name: str | None) -> str:
    return f"Hello {plain(name, 'there')},"


def _dashboard(spa_origin: str) -> str:
    return f"{spa_origin}/dashboard"


def _sign_off(spa_origin: str) -> str:
    return f"Your dashboard: {_dashboard(spa_origin)}\n\nThe ApraNova team"


def review_result(submission: dict[str, Any], spa_origin: str) -> Email:
    what = (
        f"your submission for “{submission['deliverable_title']}” (attempt {submission['attempt']}) in project "
        f"{submission['project_number']}, {submission['project_title']}"
    )
    if submission["status"] == "APPROVED":
        subject = f"Approved: {submission['deliverable_title']}"
        body = f"Your trainer approved {what}."
        if submission.get("feedback"):
            body += f"\n\nFeedback from your trainer:\n{submission['feedback']}"
    else:
        subject = f"Changes requested: {submission['deliverable_title']}"
        body = (
            f"Your trainer asked for changes to {what}.\n\n"
            f"Feedback from your trainer:\n{submission['feedback']}\n\n"
            "Make the changes and submit this deliverable again."
        )
    return Email(
        to=(submission["student_email"],),
        subject=subject,
        text=f"{_hello(submission['student_name'])}\n\n{body}\n\n{_sign_off(spa_origin)}",
        links=(_dashboard(spa_origin),),
    )


def project_unlocked(submission: dict[str, Any], unlocked: dict[str, Any], spa_origin: str) -> Email:
    return Email(
        to=(submission["student_email"],),
        subject=f"Project {unlocked['number']} unlocked: {unlocked['title']}",
        text=(
            f"{_hello(submission['student_name'])}\n\n"
            f"Project {submission['project_number']}, {submission['project_title']}, is approved. "
            f"Well done!\n\nYour next project, {unlocked['number']}. {unlocked['title']}, is now unlocked: "
            "start it whenever you are ready.\n\n"
            f"{_sign_off(spa_origin)}"
        ),
        links=(_dashboard(spa_origin),),
    )


def track_completed(submission: dict[str, Any], project: dict[str, Any], spa_origin: str) -> Email:
    return Email(
        to=(submission["student_email"],),
        subject=f"You completed the {project['track_name']} track",
        text=(
            f"{_hello(submission['student_name'])}\n\n"
            f"Congratulations! Your final project, {project['title']}, is approved and you have completed "
            f"the {project['track_name']} track.\n\n"
            f"{_sign_off(spa_origin)}"
        ),
        links=(_dashboard(spa_origin),),
    )
