"""The AWS side of the local stack: an in-process moto server, its state on disk, and its bootstrap.

moto keeps everything in module-level backends, so with the server in this process the state of the
services the app keeps (S3, Cognito, SES, SSM) is saved by pickling those backends' attributes to
``<state_dir>/moto-state.pickle`` (periodically and at shutdown) and put back before the bootstrap
runs. Lambda functions, IAM and Step Functions are not saved: the bootstrap (idempotent, run on
every start) registers them from the code, so they always match it.
"""

from __future__ import annotations

import copyreg
import datetime as dt
import io
import json
import logging
import os
import pickle
import secrets
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import boto3
import requests
from botocore.exceptions import ClientError
from joserfc import jwk
from moto.backends import get_backend
from moto.core.base_backend import BaseBackend
from moto.core.config import default_user_config
from moto.moto_server import werkzeug_app
from moto.ses.models import SESBackend
from moto.sesv2.responses import SESV2Response
from moto.utilities.utils import load_resource

from apranova import user_pool_settings
from local import cognito, lambda_dispatch
from local.keepalive import make_server

# moto's get_backend is typed per literal service name; these services are named by variables.
_backend = cast(Callable[[str], Any], get_backend)

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account, the one fake credentials map to
PERSISTED_SERVICES = ("s3", "cognito-idp", "ses", "sesv2", "ssm", "efs", "ecs")
STATE_FILE = "moto-state.pickle"
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}

POOL_NAME = "apranova-local"
CLIENT_NAME = "apranova-spa"
# Group → precedence, as CDK creates them.
GROUPS = user_pool_settings.GROUP_PRECEDENCE
SENDER = "no-reply@apranova.local"
BUCKETS = {
    "uploads": "apranova-local-uploads",
    "datasets": "apranova-local-datasets",
    "exports": "apranova-local-exports",
}
LAMBDA_ROLE = "apranova-local-lambda"
FUNCTION_PREFIX = "apranova-"

DEV_USERS: dict[str, dict[str, Any]] = {
    "admin": {
        "email": "admin@apranova.local",
        "name": "Local Admin",
        "group": "admins",
        "role": "admin",
        "track": None,
    },
    "trainer_dp": {
        "email": "trainer.dp@apranova.local",
        "name": "Local DP Trainer",
        "group": "trainers",
        "role": "trainer",
        "track": "DP",
    },
    "trainer_fsd": {
        "email": "trainer.fsd@apranova.local",
        "name": "Local FSD Trainer",
        "group": "trainers",
        "role": "trainer",
        "track": "FSD",
    },
}


# --- the server ---------------------------------------------------------------------------------


class MotoServer:
    """moto's server (its own WSGI application and request handler) in a thread of this process,
    keeping connections open between requests (local/keepalive.py), as AWS's endpoints do."""

    def __init__(self, port: int = 0) -> None:
        self._requested_port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self._saved: tuple[dict[str, Any], str | None] = ({}, None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        lambda_dispatch.install()
        cognito.install()
        patch_ses()
        # moto's config and MOTO_PORT are process-wide: put them back on stop (tests share the process).
        self._saved = ({key: default_user_config.get(key) for key in MOTO_CONFIG}, os.environ.get("MOTO_PORT"))
        # Looked up now: local/moto_overhead.py (installed above) replaces create_backend_app.
        app = werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app)
        handler = werkzeug_app.MotoRequestHandler
        self._server = make_server("127.0.0.1", self._requested_port, app, request_handler=handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        self.port = self._server.server_port
        # moto's Step Functions call its Lambda API at localhost:MOTO_PORT.
        os.environ["MOTO_PORT"] = str(self.port)
        response = requests.post(f"{self.url}/moto-api/config", json=MOTO_CONFIG, timeout=10)
        response.raise_for_status()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        config, port = self._saved
        default_user_config.update(config)  # type: ignore[typeddict-item]
        if port is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = port


def client(service: str, moto_url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=moto_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
    )


def patch_ses() -> None:
    """moto's SES messages carry no time (the mailbox shows when each was accepted) and lose their text
    part when they have both (the mailbox shows both). Idempotent."""
    if getattr(SESBackend, "_apranova_stamped", False):
        return
    for name in ("send_email", "send_raw_email", "send_templated_email"):
        original = getattr(SESBackend, name)

        def stamped(self: SESBackend, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            message = _original(self, *args, **kwargs)
            message.sent_at = dt.datetime.now(dt.UTC).isoformat()
            return message

        setattr(SESBackend, name, stamped)
    SESBackend._apranova_stamped = True  # type: ignore[attr-defined]
    _keep_text_part()


def _keep_text_part() -> None:
    """moto's SES v2 keeps only the HTML of a message that has both parts: keep the text part too, so
    the mailbox shows what a mail client without HTML shows."""
    original = SESV2Response.send_email

    def send_email(self: SESV2Response) -> str:
        answer = original(self)
        body = ((json.loads(self.body).get("Content") or {}).get("Simple") or {}).get("Body") or {}
        if "Html" in body and "Text" in body:
            message_id = json.loads(answer)["MessageId"]
            for message in self.sesv2_backend.core_backend.sent_messages:
                if message.id == message_id:
                    message.text_body = body["Text"]["Data"]
        return answer

    SESV2Response.send_email = send_email  # type: ignore[method-assign]


# --- state on disk ------------------------------------------------------------------------------


def _moto_private_key() -> jwk.RSAKey:
    return jwk.RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))


# Every moto user pool holds the same static signing key object, which cannot be pickled: save a
# reference and load moto's key file again.
copyreg.pickle(jwk.RSAKey, lambda _key: (_moto_private_key, ()))


def _plain(value: Any) -> Any:
    """dict subclasses whose constructors pickle badly (moto's ParameterDict, lambda defaultdicts)."""
    if isinstance(value, dict) and type(value) not in (dict,) and not hasattr(type(value), "move_to_end"):
        return dict(value)
    return value


def snapshot() -> dict[str, Any]:
    state: dict[str, Any] = {}
    for service in PERSISTED_SERVICES:
        for account, regions in list(_backend(service).items()):
            for region, backend in list(regions.items()):
                attributes = {}
                for name, value in list(vars(backend).items()):
                    if name in ("region_name", "account_id", "partition") or isinstance(value, BaseBackend):
                        continue  # identity, or a reference to another backend (sesv2 → ses)
                    try:
                        attributes[name] = pickle.dumps(_plain(value))
                    except (pickle.PicklingError, TypeError, AttributeError):
                        continue  # not state (locks, back-references): rebuilt by the backend
                state.setdefault(service, {}).setdefault(account, {})[region] = attributes
    # S3 finds a bucket's owner through this map on the BackendDict, not the backend.
    state["_s3_bucket_accounts"] = dict(getattr(_backend("s3"), "bucket_accounts", {}))
    return state


def restore(state: dict[str, Any]) -> None:
    state = dict(state)
    _backend("s3").bucket_accounts.update(state.pop("_s3_bucket_accounts", {}))
    for service, accounts in state.items():
        backends = _backend(service)
        for account, regions in accounts.items():
            for region, attributes in regions.items():
                backend = backends[account][region]
                for name, data in attributes.items():
                    value = pickle.loads(data)  # noqa: S301 - our own state file
                    current = getattr(backend, name, None)
                    if isinstance(current, dict) and isinstance(value, dict):
                        current.clear()
                        current.update(value)
                    else:
                        setattr(backend, name, value)


class StateStore:
    """Saves moto's state under the state dir now, every ``interval`` seconds, and on ``close``."""

    def __init__(self, state_dir: Path, interval: float = 15.0) -> None:
        self.path = state_dir / STATE_FILE
        self._interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def load(self) -> bool:
        if not self.path.exists():
            return False
        try:
            with self.path.open("rb") as handle:
                restore(pickle.load(handle))  # noqa: S301 - our own state file
        except Exception:  # noqa: BLE001 - e.g. saved by another moto version: start afresh, keep the file
            broken = self.path.with_suffix(".unreadable")
            os.replace(self.path, broken)
            logging.getLogger("local").warning("could not restore moto state; moved it to %s", broken, exc_info=True)
            return False
        return True

    def save(self) -> None:
        with self._lock:
            for _attempt in range(3):
                try:
                    data = pickle.dumps(snapshot())
                    break
                except RuntimeError:  # a backend dict changed while we read it: read again
                    continue
            else:
                return
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, self.path)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="moto-state", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.save()

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self.save()


# --- bootstrap ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bootstrap:
    user_pool_id: str
    client_id: str
    buckets: dict[str, str]
    sender: str
    dev_users: dict[str, dict[str, str]]  # key → {email, password, sub, name, role, track}


def _dev_passwords(state_dir: Path) -> dict[str, str]:
    """Generated once per state dir, then kept: the dev users' passwords survive restarts."""
    path = state_dir / "dev-users.json"
    passwords: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for key in DEV_USERS:
        if key not in passwords:
            # The pool policy wants 12+ characters with upper, lower, digit and symbol.
            passwords[key] = f"Dev-{secrets.token_urlsafe(12)}9a"
            changed = True
    if changed:
        path.write_text(json.dumps(passwords, indent=2))
        path.chmod(0o600)
    return passwords


def _ignore(error_codes: tuple[str, ...], call: Any, **kwargs: Any) -> Any:
    try:
        return call(**kwargs)
    except ClientError as error:
        if error.response["Error"]["Code"] not in error_codes:
            raise
        return None


def pool_settings() -> dict[str, Any]:
    """The pool's settings in the Cognito API's shape, from the definition CDK deploys."""
    policy = user_pool_settings.PASSWORD_POLICY
    return {
        "UsernameAttributes": ["email"],
        "AutoVerifiedAttributes": ["email"],
        "UsernameConfiguration": {"CaseSensitive": False},
        "Policies": {
            "PasswordPolicy": {
                "MinimumLength": policy.min_length,
                "RequireUppercase": policy.require_uppercase,
                "RequireLowercase": policy.require_lowercase,
                "RequireNumbers": policy.require_digits,
                "RequireSymbols": policy.require_symbols,
                "TemporaryPasswordValidityDays": policy.temporary_password_validity_days,
            }
        },
        "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": False},
        "MfaConfiguration": "OFF",
        "VerificationMessageTemplate": {
            "DefaultEmailOption": "CONFIRM_WITH_CODE",
            "EmailSubject": user_pool_settings.VERIFICATION_EMAIL_SUBJECT,
            "EmailMessage": user_pool_settings.VERIFICATION_EMAIL_MESSAGE,
        },
        "AccountRecoverySetting": {"RecoveryMechanisms": [{"Priority": 1, "Name": "verified_email"}]},
    }


def client_settings() -> dict[str, Any]:
    return {
        "ExplicitAuthFlows": list(user_pool_settings.EXPLICIT_AUTH_FLOWS),
        "PreventUserExistenceErrors": "ENABLED",
        "EnableTokenRevocation": True,
        "AccessTokenValidity": user_pool_settings.ACCESS_TOKEN_MINUTES,
        "IdTokenValidity": user_pool_settings.ID_TOKEN_MINUTES,
        "RefreshTokenValidity": user_pool_settings.REFRESH_TOKEN_DAYS,
        "TokenValidityUnits": {"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "days"},
    }


class StalePoolError(RuntimeError):
    """The state dir's pool was created with other settings than the ones CDK deploys."""


def _pool_drift(pool: dict[str, Any]) -> list[str]:
    wanted = pool_settings()
    return sorted(key for key, value in wanted.items() if pool.get(key) != value)


def _user_pool(cognito: Any) -> tuple[str, str]:
    """Finds or creates the pool and its client; the client and the groups take the current
    settings in place, the pool must already have them."""
    pools = cognito.list_user_pools(MaxResults=60)["UserPools"]
    pool_id = next((p["Id"] for p in pools if p["Name"] == POOL_NAME), None)
    if pool_id is None:
        pool_id = cognito.create_user_pool(PoolName=POOL_NAME, **pool_settings())["UserPool"]["Id"]
    # Not updated in place: Cognito cannot change a pool's username attributes, and moto's
    # UpdateUserPool drops every setting it is not given (email sign-in with them).
    drift = _pool_drift(cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"])
    if drift:
        raise StalePoolError(
            f"the local user pool {pool_id} differs from the deployed settings in {', '.join(drift)}: "
            "run `make dev-reset` to start from a fresh state"
        )
    clients = cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
    client_id = next((c["ClientId"] for c in clients if c["ClientName"] == CLIENT_NAME), None)
    if client_id is None:
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool_id, ClientName=CLIENT_NAME, GenerateSecret=False, **client_settings()
        )["UserPoolClient"]["ClientId"]
    else:
        cognito.update_user_pool_client(
            UserPoolId=pool_id, ClientId=client_id, ClientName=CLIENT_NAME, **client_settings()
        )
    for group, precedence in GROUPS.items():
        created = _ignore(
            ("GroupExistsException",),
            cognito.create_group,
            UserPoolId=pool_id,
            GroupName=group,
            Precedence=precedence,
        )
        if created is None:
            cognito.update_group(UserPoolId=pool_id, GroupName=group, Precedence=precedence)
    return pool_id, client_id


def _dev_user(cognito: Any, pool_id: str, spec: dict[str, Any], password: str) -> str:
    """Creates or refreshes one dev user; returns its sub."""
    try:
        user = cognito.admin_get_user(UserPoolId=pool_id, Username=spec["email"])
        attributes = user["UserAttributes"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "UserNotFoundException":
            raise
        attributes = cognito.admin_create_user(
            UserPoolId=pool_id,
            Username=spec["email"],
            UserAttributes=[
                {"Name": "email", "Value": spec["email"]},
                {"Name": "email_verified", "Value": "true"},
                {"Name": "name", "Value": spec["name"]},
            ],
            MessageAction="SUPPRESS",
        )["User"]["Attributes"]
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=spec["email"], Password=password, Permanent=True)
    cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=spec["email"], GroupName=spec["group"])
    return next(a["Value"] for a in attributes if a["Name"] == "sub")


def _lambda_zip() -> bytes:
    # moto stores the package; the code that runs is the in-repo handler (lambda_dispatch).
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def register_function(
    moto_url: str, function_name: str, handler: str, environment: dict[str, str] | None = None
) -> str:
    """Creates ``function_name`` in moto (if missing) and dispatches its invocations to ``handler``.

    Returns the function's ARN, for state machine definitions.
    """
    iam = client("iam", moto_url)
    role = _ignore(
        ("EntityAlreadyExists",),
        iam.create_role,
        RoleName=LAMBDA_ROLE,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )
    role_arn = role["Role"]["Arn"] if role else iam.get_role(RoleName=LAMBDA_ROLE)["Role"]["Arn"]
    lam = client("lambda", moto_url)
    lambda_dispatch.register(function_name, handler)
    try:
        return lam.get_function(FunctionName=function_name)["Configuration"]["FunctionArn"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    return lam.create_function(
        FunctionName=function_name,
        Runtime="python3.12",
        Role=role_arn,
        Handler=handler.replace(":", "."),
        Code={"ZipFile": _lambda_zip()},
        Environment={"Variables": environment or {}},
        Architectures=["arm64"],
    )["FunctionArn"]


@dataclass(frozen=True)
class PaymentsBootstrap:
    api_key_param: str
    webhook_secret_param: str
    webhook_secret: str
    api_key: str  # the emulator accepts this key only, as Stripe accepts the account's key only


STRIPE_PARAMS = {"api_key": "/apranova/local/stripe/api-key", "webhook_secret": "/apranova/local/stripe/webhook-secret"}
STATES_ROLE = "apranova-local-states"


def _stripe_secrets(state_dir: Path) -> dict[str, str]:
    """The emulator's API key and webhook signing secret: generated once per state dir, then kept."""
    path = state_dir / "stripe-secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    values = {"api_key": f"sk_test_local_{secrets.token_hex(12)}", "webhook_secret": f"whsec_{secrets.token_hex(24)}"}
    path.write_text(json.dumps(values, indent=2))
    path.chmod(0o600)
    return values


def states_role(iam: Any) -> str:
    """The role the local state machines run as (moto wants one; it checks nothing)."""
    role = _ignore(
        ("EntityAlreadyExists",),
        iam.create_role,
        RoleName=STATES_ROLE,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )
    return role["Role"]["Arn"] if role else iam.get_role(RoleName=STATES_ROLE)["Role"]["Arn"]


def bootstrap_payments(moto_url: str, state_dir: Path) -> PaymentsBootstrap:
    """The Stripe secrets in SSM, as in AWS."""
    values = _stripe_secrets(state_dir)
    ssm = client("ssm", moto_url)
    for key, name in STRIPE_PARAMS.items():
        ssm.put_parameter(Name=name, Value=values[key], Type="SecureString", Overwrite=True)
    return PaymentsBootstrap(
        STRIPE_PARAMS["api_key"], STRIPE_PARAMS["webhook_secret"], values["webhook_secret"], values["api_key"]
    )


def bootstrap(moto_url: str, state_dir: Path, *, spa_origin: str) -> Bootstrap:
    """Creates what the app expects to exist in AWS; safe to run on every start."""
    cognito = client("cognito-idp", moto_url)
    pool_id, client_id = _user_pool(cognito)
    passwords = _dev_passwords(state_dir)
    dev_users: dict[str, dict[str, str]] = {}
    for key, spec in DEV_USERS.items():
        sub = _dev_user(cognito, pool_id, spec, passwords[key])
        dev_users[key] = {
            "email": spec["email"],
            "password": passwords[key],
            "sub": sub,
            "name": spec["name"],
            "role": spec["role"],
            "track": spec["track"] or "",
        }

    s3 = client("s3", moto_url)
    for bucket in BUCKETS.values():
        _ignore(("BucketAlreadyOwnedByYou", "BucketAlreadyExists"), s3.create_bucket, Bucket=bucket)
    # The uploads bucket's CORS rule as in AWS (apranova.cors): the web app's browser uploads go
    # straight to the bucket, and moto answers a preflight from any other origin with 403.
    from apranova import cors

    s3.put_bucket_cors(
        Bucket=BUCKETS["uploads"], CORSConfiguration={"CORSRules": [cors.uploads_bucket_rule(spa_origin)]}
    )

    client("ses", moto_url).verify_email_identity(EmailAddress=SENDER)
    _ignore(("AlreadyExistsException",), client("sesv2", moto_url).create_email_identity, EmailIdentity=SENDER)

    ssm = client("ssm", moto_url)
    for name, value in {
        "/apranova/local/email/sender": SENDER,
        "/apranova/local/spa/origin": spa_origin,
    }.items():
        ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)

    from apranova import routes

    for function in routes.functions():
        register_function(moto_url, FUNCTION_PREFIX + function, f"{routes.handler_module(function)}.lambda_handler")

    return Bootstrap(pool_id, client_id, dict(BUCKETS), SENDER, dev_users)


# --- the mailbox --------------------------------------------------------------------------------


def _looks_html(body: str) -> bool:
    head = body.lstrip()[:200].lower()
    return head.startswith("<") and ("<html" in head or "<!doctype" in head or "<p" in head or "<div" in head)


def _recipients(destinations: Any) -> list[str]:
    if isinstance(destinations, dict):
        found: list[str] = []
        for key in ("ToAddresses", "CcAddresses", "BccAddresses"):
            found.extend(destinations.get(key) or [])
        return found
    return list(destinations or [])


def mailbox() -> list[dict[str, Any]]:
    """What SES (v1 and v2: v2 stores into v1's backend) accepted, newest first."""
    from email import message_from_string, policy

    items = []
    for _account, regions in list(_backend("ses").items()):
        for _region, backend in list(regions.items()):
            for index, message in enumerate(list(backend.sent_messages)):
                item: dict[str, Any] = {
                    "id": message.id,
                    "from": message.source,
                    "to": _recipients(message.destinations),
                    "subject": getattr(message, "subject", None),
                    "body_text": None,
                    "body_html": None,
                    "sent_at": getattr(message, "sent_at", None),
                }
                if hasattr(message, "raw_data"):
                    parsed = message_from_string(message.raw_data, policy=policy.default)
                    item["subject"] = parsed["subject"]
                    item["from"] = parsed["from"] or message.source
                    for kind in ("plain", "html"):
                        part = parsed.get_body(preferencelist=(kind,))
                        if part is not None and part.get_content_subtype() == kind:
                            item["body_text" if kind == "plain" else "body_html"] = part.get_content()
                elif hasattr(message, "template"):
                    item["subject"] = f"template {message.template}"
                    item["body_text"] = message.template_data
                elif _looks_html(message.body or ""):
                    item["body_html"] = message.body
                    item["body_text"] = getattr(message, "text_body", None)  # kept by _keep_text_part
                else:
                    item["body_text"] = message.body
                items.append((item["sent_at"] or "", index, item))
    items.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)
    return [item for _, _, item in items]
