"""SendWelcomeEmail: the track, the first project and the tool links; never a secret (passwords
are read in the app, behind the student's login). Sent once per enrollment."""

from __future__ import annotations

from typing import Any

from apranova import audit, db, mail, spa
from apranova.observability import entry
from apranova.settings import BaseSettings, load
from functions.provision import workflow_repository as repository
from functions.provision.steps import enrollment_input

TOOL_NAMES = {
    "STUDENT_DATABASE": "Your PostgreSQL database (credentials on your dashboard)",
    "SUPERSET": "Apache Superset",
    "PREFECT": "Prefect",
    "JUPYTER": "JupyterHub",
    "WORKSPACE": "Your VS Code workspace (start it from your dashboard)",
}


class WelcomeSettings(BaseSettings):
    spa_origin: str = "http://localhost:5173"


def render(user: dict[str, Any], track_name: str, project: dict[str, Any] | None, tools: list[dict[str, Any]],
           spa_origin: str) -> mail.Email:  # fmt: skip
    # A pay-first account's address is not verified yet: no text the payer typed goes to it, not
    # even their name (docs/principles.md §8 rule 16).
    name = mail.plain(user.get("name")) if user.get("email_verified") else ""
    greeting = f"Hello {name}," if name else "Hello,"
    lines = [greeting, "", f"Welcome to the ApraNova {track_name} track: you are enrolled."]
    if project:
        lines += ["", f"Your first project is unlocked: {project['number']}. {project['title']}"]
    ready = [t for t in tools if t["status"] == "SUCCEEDED"]
    if ready:
        lines += ["", "Your tools are ready:"]
        for tool in ready:
            link = f" {tool['access_url']}" if tool["access_url"] else ""
            lines.append(f"- {TOOL_NAMES.get(tool['tool'], tool['tool'])}{link}")
    dashboard = spa.page(spa_origin, "dashboard")
    lines += ["", f"Your dashboard: {dashboard}", "", "The ApraNova team"]
    links = (dashboard, *(t["access_url"] for t in ready if t["access_url"]))
    return mail.Email(
        to=(user["email"],), subject=f"Welcome to ApraNova — {track_name}", text="\n".join(lines), links=links
    )


@entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = enrollment_input(event)
    user = repository.user(state.user_id)
    if user is None or repository.audited(state.user_id, "WELCOME_EMAIL_SENT"):
        return event
    project = repository.first_project(state.track)
    track_name = repository.track_name(state.track) or state.track
    email = render(user, track_name, project, repository.tools(state.user_id), load(WelcomeSettings).spa_origin)
    message_id = mail.send(email)
    with db.transaction() as cur:
        audit.record(
            cur,
            "WELCOME_EMAIL_SENT",
            subject_id=state.user_id,
            resource_type="user",
            resource_id=state.user_id,
            details={"track": state.track, "message_id": message_id},
        )
    return event
