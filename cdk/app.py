"""The CDK app: ``python -m cdk.app`` from the repository root (cdk.json runs it).

Context: ``stage`` (default dev), optionally ``webDomain`` with ``webCertificateArn`` (the web app
on a domain of the operator's, with an ACM certificate of us-east-1; required in prod; without it
the app is served on its CloudFront distribution's own domain, and either way that origin is the
only one CORS allows and the one every email links to), ``sesSenderArn`` (the SES identity the user
pool sends its emails from; Cognito's own sender otherwise), ``emailSender`` (the From address of
the functions' emails: by default the ``sesSenderArn`` identity's sender, else a placeholder for
dev), ``opsEmail`` (where operator alerts go; logged only without it), ``workspaceImage`` (the FSD
workspace's container image; a pinned code-server by default), ``workspaceUrlTemplate`` (how
students reach a running workspace; the proxy's host behind the front door, else its private IP),
``toolsDomain`` with ``toolsCertificateArn`` or ``toolsHostedZoneId`` (the shared tools and the
workspace proxy behind one authenticated HTTPS front door at jupyter., superset., prefect. and
workspace.<toolsDomain>; required in prod), ``toolsAuthDomainPrefix`` (the Cognito hosted-UI prefix
domain, unique in the region), ``toolImageDigests`` (tool → sha256 digest of its official image;
required in prod for each built tool), ``supersetUrl``, ``jupyterhubUrl`` and ``prefectUrl`` (a tool
the operator brings instead: that tool is not built, its URL goes to SSM), ``account`` and
``region`` (without both the stack is environment-agnostic, so synth needs no credentials; with
both, the CLI looks the region's availability zones up once, unless ``availabilityZones`` lists
them), ``costProfile`` (``standard``, or ``lean`` for a cheap non-production stage),
``databaseAccess`` (``true``: the operator's port-forwarding instance to the database) and
``workspaceImageCacheSecretArn`` (Docker Hub credentials for an ECR pull-through cache the workspace
image is pulled through), ``apiDomainName`` with ``apiCertificateArn`` (the API on a domain of the
operator's, with an ACM certificate of the stack's region), ``studentsDatabase`` (``dedicated``: the
students' databases on an instance of their own, the default and the only choice in prod;
``shared``: on the application's instance, the lean profile's default). docs/operations.md describes
each.

``contextFile`` names a JSON file of those values (an operator's per-stage settings, kept out of
cdk.json): it fills in what ``-c`` did not set. Stage ``prod`` refuses to synthesize without
``PRODUCTION_CONTEXT`` and says everything missing at once; cdk/context/prod.example.json is a
complete example (``make synth STAGE=prod`` uses it).
"""

from __future__ import annotations

import json
import re
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
from cdk.constructs.shared_tools import TOOL_IMAGES, FrontDoorSettings, tool_image_digests  # noqa: E402
from cdk.constructs.student_tools import URL_CONTEXT  # noqa: E402
from cdk.constructs.students_database import STUDENTS_DATABASE_MODES  # noqa: E402
from cdk.constructs.web_hosting import CERTIFICATE_REGION  # noqa: E402
from cdk.constructs.workspaces import DEFAULT_IMAGE  # noqa: E402
from cdk.stacks.apranova_stack import COST_PROFILES, DEFAULT_EMAIL_SENDER, ApraNovaStack  # noqa: E402

PRODUCTION_STAGE = "prod"
# What production cannot run without, each alternative set satisfied by any one of its keys: where the
# API and its CORS point, the account and region it is pinned to, who is alerted, who sends the
# email, and the shared tools DP students are provisioned on (the steps fail without their URLs).
PRODUCTION_CONTEXT: tuple[tuple[str, ...], ...] = (
    ("account",),
    ("region",),
    # The web app's domain (docs/operations.md, The web app): its certificate comes with it.
    ("webDomain",),
    ("opsEmail",),
    ("emailSender", "sesSenderArn"),
    # The front door of the shared tools and the workspaces (docs/operations.md, Shared tools).
    ("toolsDomain",),
)
# The front door's context: its domain, and its certificate by ARN or DNS-validated in a hosted zone.
FRONT_DOOR_CONTEXT = ("toolsDomain", "toolsCertificateArn", "toolsHostedZoneId", "toolsAuthDomainPrefix")
# The keys a context file may hold: the operator's settings (the stage itself comes from -c).
OPERATOR_CONTEXT = frozenset(
    {
        "account",
        "region",
        "webDomain",
        "webCertificateArn",
        "opsEmail",
        "emailSender",
        "sesSenderArn",
        "workspaceImage",
        "workspaceUrlTemplate",
        "availabilityZones",
        "costProfile",
        "databaseAccess",
        "workspaceImageCacheSecretArn",
        "apiDomainName",
        "apiCertificateArn",
        "studentsDatabase",
        "toolImageDigests",
        *FRONT_DOOR_CONTEXT,
        *URL_CONTEXT.values(),
    }
)
# Stage names go into resource names (the instance identifier, the pool, aliases): short, lower case.
STAGE_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
STAGE_MAX_LENGTH = 20


def students_database_mode(app: App) -> str:
    """``studentsDatabase``, or its default: dedicated, except for the lean profile (cost: the
    students' instance is about a quarter of a lean stage's idle cost; docs/operations.md)."""
    mode = app.node.try_get_context("studentsDatabase")
    if mode:
        return str(mode)
    return "shared" if (app.node.try_get_context("costProfile") or "standard") == "lean" else "dedicated"


class ContextError(ValueError):
    """The app's context cannot make a stack: the message names every problem."""


def project_context() -> dict[str, Any]:
    """cdk.json's context (feature flags, defaults): the CLI passes it, tests load it here."""
    return json.loads((ROOT / "cdk.json").read_text())["context"]


def _load_context_file(app: App) -> None:
    """The ``contextFile``'s values, for every key nothing else set."""
    name = app.node.try_get_context("contextFile")
    if not name:
        return
    path = Path(name) if Path(name).is_absolute() else ROOT / name
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ContextError(f"contextFile {name}: cannot read it as JSON ({exc})") from None
    if not isinstance(values, dict):
        raise ContextError(f"contextFile {name}: must hold one JSON object of context keys")
    unknown = sorted(set(values) - OPERATOR_CONTEXT)
    if unknown:
        raise ContextError(
            f"contextFile {name}: unknown keys {', '.join(unknown)} (allowed: {', '.join(sorted(OPERATOR_CONTEXT))}; "
            "pass the stage with -c stage=...)"
        )
    for key, value in values.items():
        if app.node.try_get_context(key) in (None, ""):
            app.node.set_context(key, value)


def _pin_availability_zones(app: App) -> None:
    """A stack pinned to an account and region asks the CLI for the region's zones (an AWS call, with
    credentials) unless its lookup cache has them: ``availabilityZones`` fills that cache, so such a
    stack synthesizes offline too. A list, or the zones separated by commas (``-c``)."""
    zones = app.node.try_get_context("availabilityZones")
    account, region = app.node.try_get_context("account"), app.node.try_get_context("region")
    if not zones or not (account and region):
        return
    if isinstance(zones, str):
        zones = [zone.strip() for zone in zones.split(",") if zone.strip()]
    if not isinstance(zones, list) or len(zones) < 2 or not all(str(z).startswith(str(region)) for z in zones):
        raise ContextError(f"availabilityZones must list at least two zones of {region}, not {zones!r}")
    # The key CDK's availability-zones lookup reads (what cdk.context.json would hold).
    app.node.set_context(f"availability-zones:account={account}:region={region}", list(zones))


API_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
ACM_CERTIFICATE = re.compile(r"^arn:aws[a-z-]*:acm:([a-z0-9-]+):\d{12}:certificate/[0-9a-f-]{36}$")


def _check_api_domain(app: App) -> None:
    """``apiDomainName`` and ``apiCertificateArn`` come together; the certificate must be ACM's, in
    the stack's region when that is pinned (a regional API domain takes no other)."""
    name, arn = app.node.try_get_context("apiDomainName"), app.node.try_get_context("apiCertificateArn")
    if not name and not arn:
        return
    if not (name and arn):
        raise ContextError("apiDomainName and apiCertificateArn go together: set both, or neither")
    if not API_DOMAIN.match(str(name)):
        raise ContextError(f"apiDomainName must be a lower-case host name, not {name!r}")
    match = ACM_CERTIFICATE.match(str(arn))
    if not match:
        raise ContextError(f"apiCertificateArn must be an ACM certificate ARN, not {arn!r}")
    region = app.node.try_get_context("region")
    if region and match.group(1) != region:
        raise ContextError(
            f"apiCertificateArn must be a certificate of {region}, the stack's region, not {match.group(1)}"
        )


def _check_web_domain(app: App) -> None:
    """``webDomain`` and ``webCertificateArn`` come together; CloudFront takes certificates only from
    us-east-1. ``spaOrigin`` is gone: the stack hosts the web app itself now."""
    if app.node.try_get_context("spaOrigin"):
        raise ContextError(
            "spaOrigin is no longer a setting: the stack serves the web app from CloudFront and allows that "
            "origin; give webDomain and webCertificateArn for a domain of your own (docs/operations.md)"
        )
    name, arn = app.node.try_get_context("webDomain"), app.node.try_get_context("webCertificateArn")
    if not name and not arn:
        return
    if not (name and arn):
        raise ContextError("webDomain and webCertificateArn go together: set both, or neither")
    if not API_DOMAIN.match(str(name)):
        raise ContextError(f"webDomain must be a lower-case host name, not {name!r}")
    match = ACM_CERTIFICATE.match(str(arn))
    if not match:
        raise ContextError(f"webCertificateArn must be an ACM certificate ARN, not {arn!r}")
    if match.group(1) != CERTIFICATE_REGION:
        raise ContextError(
            f"webCertificateArn must be a certificate of {CERTIFICATE_REGION} (CloudFront's), not {match.group(1)}"
        )


def front_door(app: App) -> FrontDoorSettings | None:
    """The tools' front door from context (``toolsDomain`` ...), or None without a domain."""
    domain = app.node.try_get_context("toolsDomain")
    if not domain:
        for key in FRONT_DOOR_CONTEXT[1:]:
            if app.node.try_get_context(key):
                raise ContextError(f"{key} needs toolsDomain")
        return None
    arn = app.node.try_get_context("toolsCertificateArn") or None
    if arn:
        match = ACM_CERTIFICATE.match(str(arn))
        region = app.node.try_get_context("region")
        if not match:
            raise ContextError(f"toolsCertificateArn must be an ACM certificate ARN, not {arn!r}")
        if region and match.group(1) != region:
            raise ContextError(f"toolsCertificateArn must be a certificate of {region}, the stack's region")
    try:
        return FrontDoorSettings(
            domain=str(domain),
            certificate_arn=arn,
            hosted_zone_id=app.node.try_get_context("toolsHostedZoneId") or None,
            auth_domain_prefix=app.node.try_get_context("toolsAuthDomainPrefix") or None,
        )
    except ValueError as error:
        raise ContextError(str(error)) from None


def _image_digests(app: App) -> dict[str, str]:
    try:
        return tool_image_digests(app.node.try_get_context("toolImageDigests"))
    except ValueError as error:
        raise ContextError(str(error)) from None


def check_context(app: App, stage: str) -> None:
    """Raises ``ContextError`` naming everything wrong with the context for ``stage``."""
    if len(stage) > STAGE_MAX_LENGTH or not STAGE_NAME.match(stage):
        raise ContextError(
            f"stage must be lower-case letters, digits and single hyphens, at most {STAGE_MAX_LENGTH} "
            f"characters, not {stage!r}"
        )
    profile = app.node.try_get_context("costProfile") or "standard"
    if profile not in COST_PROFILES:
        raise ContextError(f"costProfile must be one of {', '.join(COST_PROFILES)}, not {profile!r}")
    if stage == PRODUCTION_STAGE and profile != "standard":
        raise ContextError(f"costProfile {profile} is for non-production stages; prod runs the standard profile")
    if str(app.node.try_get_context("databaseAccess") or "false").lower() not in ("true", "false"):
        raise ContextError("databaseAccess must be true or false")
    students = students_database_mode(app)
    if students not in STUDENTS_DATABASE_MODES:
        raise ContextError(f"studentsDatabase must be one of {', '.join(STUDENTS_DATABASE_MODES)}, not {students!r}")
    if stage == PRODUCTION_STAGE and students != "dedicated":
        raise ContextError(
            "studentsDatabase shared is for non-production stages; prod keeps students off the application's instance"
        )
    _check_api_domain(app)
    _check_web_domain(app)
    door = front_door(app)
    digests = _image_digests(app)
    if stage != PRODUCTION_STAGE:
        return
    missing = [
        " or ".join(keys) for keys in PRODUCTION_CONTEXT if all(not app.node.try_get_context(key) for key in keys)
    ]
    problems = []
    # Production runs only images pinned by digest: every tool the stack builds (not brought by URL).
    built = [tool for tool in TOOL_IMAGES if not app.node.try_get_context(URL_CONTEXT[tool])]
    unpinned = [tool for tool in built if tool not in digests]
    if door is not None and unpinned:
        problems.append(f"toolImageDigests must pin {', '.join(unpinned)} (sha256 digests)")
    if missing:
        problems.append(f"missing context: {', '.join(missing)}")
    if problems:
        raise ContextError(
            f"ApraNova-{stage} cannot be synthesized: {'; '.join(problems)}. Pass each value with "
            "-c key=value, or all of them in a JSON file with -c contextFile=<file> "
            "(cdk/context/prod.example.json shows every key; docs/operations.md explains them)."
        )


def build(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> tuple[App, ApraNovaStack]:
    app = App(context={**project_context(), **(context or {})}, outdir=outdir)
    _load_context_file(app)
    stage = app.node.try_get_context("stage") or "dev"
    # Before anything is built: a stage that cannot run never gets a half-made template.
    check_context(app, stage)
    _pin_availability_zones(app)
    account = app.node.try_get_context("account")
    region = app.node.try_get_context("region")
    ses_sender_arn = app.node.try_get_context("sesSenderArn") or None
    stack = ApraNovaStack(
        app,
        f"ApraNova-{stage}",
        stage=stage,
        web_domain=app.node.try_get_context("webDomain") or None,
        web_certificate_arn=app.node.try_get_context("webCertificateArn") or None,
        ses_sender_arn=ses_sender_arn,
        email_sender=app.node.try_get_context("emailSender")
        or (sender_address(ses_sender_arn) if ses_sender_arn else DEFAULT_EMAIL_SENDER),
        ops_email=app.node.try_get_context("opsEmail") or None,
        workspace_image=app.node.try_get_context("workspaceImage") or DEFAULT_IMAGE,
        workspace_url_template=app.node.try_get_context("workspaceUrlTemplate") or None,
        cost_profile=app.node.try_get_context("costProfile") or "standard",
        database_access=str(app.node.try_get_context("databaseAccess") or "false").lower() == "true",
        workspace_image_cache_secret_arn=app.node.try_get_context("workspaceImageCacheSecretArn") or None,
        api_domain_name=app.node.try_get_context("apiDomainName") or None,
        api_certificate_arn=app.node.try_get_context("apiCertificateArn") or None,
        students_database=students_database_mode(app),
        tool_urls={tool: url for tool, key in URL_CONTEXT.items() if (url := app.node.try_get_context(key))},
        front_door=front_door(app),
        tool_image_digests=_image_digests(app),
        env=Environment(account=account, region=region) if account and region else None,
        description=f"ApraNova ({stage})",
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack


def main() -> None:
    try:
        app, _ = build()
    except ContextError as exc:
        # One clear line for the operator (the CLI shows the app's stderr), not a traceback.
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    app.synth()


if __name__ == "__main__":
    main()
