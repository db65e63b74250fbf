"""The CDK app: ``python -m cdk.app`` from the repository root (cdk.json runs it).

Context: ``stage`` (default dev), ``spaOrigin`` (the SPA allowed by CORS), optionally
``sesSenderArn`` (the SES identity the user pool sends its emails from; Cognito's own sender
otherwise), ``emailSender`` (the From address of the functions' emails: by default the
``sesSenderArn`` identity's sender, else a placeholder for dev), ``opsEmail`` (where operator
alerts go; logged only without it), ``workspaceImage`` (the FSD workspace's container image; a
pinned code-server by default), ``workspaceUrlTemplate`` (how students reach a running workspace;
its private IP by default), ``supersetUrl``, ``jupyterhubUrl`` and ``prefectUrl`` (the shared tools'
base URLs, written to SSM; otherwise the operator creates those parameters), ``account`` and
``region`` (without both the stack is environment-agnostic, so synth needs no credentials).
docs/operations.md describes each.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The route table lives in the common layer; the venv's .pth normally provides it.
for _path in (ROOT, ROOT / "layers" / "common" / "python"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from aws_cdk import App, Environment, Validations  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from cdk.constructs.identity import sender_address  # noqa: E402
from cdk.constructs.student_tools import URL_CONTEXT  # noqa: E402
from cdk.constructs.workspaces import DEFAULT_IMAGE  # noqa: E402
from cdk.stacks.apranova_stack import DEFAULT_EMAIL_SENDER, ApraNovaStack  # noqa: E402

DEFAULT_SPA_ORIGIN = "http://localhost:5173"


def project_context() -> dict[str, Any]:
    """cdk.json's context (feature flags, defaults): the CLI passes it, tests load it here."""
    return json.loads((ROOT / "cdk.json").read_text())["context"]


def build(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> tuple[App, ApraNovaStack]:
    app = App(context={**project_context(), **(context or {})}, outdir=outdir)
    stage = app.node.try_get_context("stage") or "dev"
    account = app.node.try_get_context("account")
    region = app.node.try_get_context("region")
    ses_sender_arn = app.node.try_get_context("sesSenderArn") or None
    stack = ApraNovaStack(
        app,
        f"ApraNova-{stage}",
        stage=stage,
        spa_origin=app.node.try_get_context("spaOrigin") or DEFAULT_SPA_ORIGIN,
        ses_sender_arn=ses_sender_arn,
        email_sender=app.node.try_get_context("emailSender")
        or (sender_address(ses_sender_arn) if ses_sender_arn else DEFAULT_EMAIL_SENDER),
        ops_email=app.node.try_get_context("opsEmail") or None,
        workspace_image=app.node.try_get_context("workspaceImage") or DEFAULT_IMAGE,
        workspace_url_template=app.node.try_get_context("workspaceUrlTemplate") or None,
        tool_urls={tool: url for tool, key in URL_CONTEXT.items() if (url := app.node.try_get_context(key))},
        env=Environment(account=account, region=region) if account and region else None,
        description=f"ApraNova ({stage})",
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack


def main() -> None:
    app, _ = build()
    app.synth()


if __name__ == "__main__":
    main()
