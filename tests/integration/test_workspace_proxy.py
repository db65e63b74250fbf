"""The workspace proxy's core against real things: an ES256 key made here signs ALB-style identity
headers (as the load balancer does, base64url padded), the students' rows are real PostgreSQL rows,
and their workspace tasks run in moto's ECS. Student A signed in reaches A's task; B's task is never
a target for A's request, whatever A sends.
"""

from __future__ import annotations

import base64
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.integration.workspace_support import REGION, Aws, moto_workspaces

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "proxy"))
from workspace_proxy.identity import KEY_URL, KeyCache, NotSignedIn, verify  # noqa: E402
from workspace_proxy.targets import Refusal, Target, resolve  # noqa: E402

ALB = f"arn:aws:elasticloadbalancing:{REGION}:123456789012:loadbalancer/app/apranova-tools/50dc6c495c0c9188"
KID = "8c5b6d3e-1f0a-4c2b-9d7e-2a4f6b8c0d1e"


def _b64(data: bytes) -> str:
    # The load balancer keeps base64's "=" padding (JWT libraries do not): reproduce it.
    return base64.urlsafe_b64encode(data).decode()


def alb_token(key: ec.EllipticCurvePrivateKey, claims: dict, *, signer: str = ALB, kid: str = KID) -> str:
    header = {
        "alg": "ES256",
        "kid": kid,
        "signer": signer,
        "iss": "https://cognito-idp",
        "client": "c",
        "exp": claims["exp"],
    }
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@pytest.fixture(scope="module")
def alb_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def keys(alb_key) -> KeyCache:
    """The region's key endpoint, answering with the PEM of the key the test signs with."""
    pem = alb_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    endpoint = {KEY_URL.format(region=REGION, kid=KID): pem.decode()}
    return KeyCache(REGION, fetch=lambda url: endpoint[url])


@pytest.fixture(scope="module")
def aws() -> Iterator[Aws]:
    with moto_workspaces() as made:
        made.ecs.register_task_definition(
            family="apranova-workspace-any",
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=[{"name": "code-server", "image": "codercom/code-server:4.96.4", "memory": 512}],
        )
        yield made


@pytest.fixture
def students(conn) -> Iterator[Callable[..., str]]:
    made: list[str] = []

    def make(*, status: str = "ENROLLED", workspace: str | None = "SUCCEEDED") -> str:
        user_id = str(uuid.uuid4())
        conn.execute(
            "INSERT INTO users (id, email, role, track_id, enrollment_status, email_verified)"
            " VALUES (%s, %s, 'student', (SELECT id FROM tracks WHERE code = 'FSD'), %s, true)",
            (user_id, f"proxy-{user_id[:8]}@example.com", status),
        )
        if workspace:
            conn.execute(
                "INSERT INTO tool_provisioning (user_id, tool, status) VALUES (%s, 'WORKSPACE', %s)",
                (user_id, workspace),
            )
        made.append(user_id)
        return user_id

    yield make
    conn.execute("DELETE FROM users WHERE id = ANY(%s::uuid[])", (made,))


def start_task(aws: Aws, user_id: str, family: str = "apranova-workspace-any") -> str:
    task = aws.ecs.run_task(
        cluster=aws.cluster,
        taskDefinition=family,
        launchType="FARGATE",
        startedBy=user_id,
        networkConfiguration={"awsvpcConfiguration": {"subnets": [aws.subnet], "securityGroups": [aws.security_group]}},
    )["tasks"][0]
    (ip,) = [d["value"] for a in task["attachments"] for d in a["details"] if d["name"] == "privateIPv4Address"]
    return ip


def headers_for(key, user_id: str, *, expires_in: int = 60, **changes) -> dict[str, str]:
    token = alb_token(key, {"sub": user_id, "email": "s@example.com", "exp": int(time.time()) + expires_in}, **changes)
    return {"x-amzn-oidc-data": token, "x-amzn-oidc-identity": user_id}


def test_a_signed_in_student_reaches_their_own_workspace_and_never_anothers(alb_key, keys, aws, students, conn) -> None:
    a, b = students(), students()
    ip_a, ip_b = start_task(aws, a), start_task(aws, b)
    assert ip_a != ip_b
    ecs = boto3.client("ecs", region_name=REGION)

    identity = verify(headers_for(alb_key, a), keys=keys, load_balancer_arn=ALB)
    assert identity.user_id == a
    assert resolve(conn, ecs, aws.cluster, identity.user_id) == Target(ip_a, 8080)
    # B signed in goes to B's task; nothing in A's request can name B's.
    identity_b = verify(headers_for(alb_key, b), keys=keys, load_balancer_arn=ALB)
    assert resolve(conn, ecs, aws.cluster, identity_b.user_id) == Target(ip_b, 8080)
    # A claiming to be B in the plain header, with A's signed token: refused.
    forged = {**headers_for(alb_key, a), "x-amzn-oidc-identity": b}
    with pytest.raises(NotSignedIn, match="disagree"):
        verify(forged, keys=keys, load_balancer_arn=ALB)


def test_tokens_the_load_balancer_did_not_sign_are_refused(alb_key, keys, students) -> None:
    a = students()
    other_key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(NotSignedIn, match="does not verify"):
        verify(headers_for(other_key, a), keys=keys, load_balancer_arn=ALB)
    with pytest.raises(NotSignedIn, match="not signed by our load balancer"):
        verify(
            headers_for(alb_key, a, signer=ALB.replace("apranova-tools", "someone-else")),
            keys=keys,
            load_balancer_arn=ALB,
        )
    with pytest.raises(NotSignedIn, match="does not verify"):
        verify(headers_for(alb_key, a, expires_in=-120), keys=keys, load_balancer_arn=ALB)
    with pytest.raises(NotSignedIn, match="no identity"):
        verify({"x-amzn-oidc-identity": a}, keys=keys, load_balancer_arn=ALB)
    # A token whose payload was altered after signing (another student's sub) does not verify.
    token = headers_for(alb_key, a)["x-amzn-oidc-data"]
    head, _, rest = token.partition(".")
    payload, _, signature = rest.partition(".")
    swapped = _b64(json.dumps({"sub": str(uuid.uuid4()), "exp": int(time.time()) + 60}).encode())
    with pytest.raises(NotSignedIn):
        verify({"x-amzn-oidc-data": f"{head}.{swapped}.{signature}"}, keys=keys, load_balancer_arn=ALB)


def test_only_students_whose_workspace_is_theirs_now_are_forwarded(alb_key, keys, aws, students, conn) -> None:
    ecs = boto3.client("ecs", region_name=REGION)
    stopped = students()
    assert resolve(conn, ecs, aws.cluster, stopped) == Refusal(
        503, "your workspace is not running: start it from the ApraNova app"
    )
    suspended = students(status="SUSPENDED")
    start_task(aws, suspended)
    assert resolve(conn, ecs, aws.cluster, suspended).status == 403
    never_provisioned = students(workspace=None)
    start_task(aws, never_provisioned)
    assert resolve(conn, ecs, aws.cluster, never_provisioned).status == 403
    assert resolve(conn, ecs, aws.cluster, str(uuid.uuid4())).status == 403
    # A task of another family started with the student's id (not a workspace) is no target.
    other = students()
    aws.ecs.register_task_definition(
        family="not-a-workspace",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "x", "image": "busybox", "memory": 512}],
    )
    start_task(aws, other, family="not-a-workspace")
    assert resolve(conn, ecs, aws.cluster, other).status == 503


class _EcsWithLoopbackTasks:
    """ECS's ListTasks/DescribeTasks answering with RUNNING workspace tasks on 127.0.0.1 (moto's
    tasks get VPC addresses this machine cannot reach): user id → task."""

    def __init__(self, *user_ids: str) -> None:
        self.tasks = {
            user_id: {
                "taskArn": f"arn:aws:ecs:{REGION}:123456789012:task/workspaces/{n}",
                "taskDefinitionArn": f"arn:aws:ecs:{REGION}:123456789012:task-definition/apranova-workspace-x:1",
                "startedBy": user_id,
                "lastStatus": "RUNNING",
                "desiredStatus": "RUNNING",
                "attachments": [
                    {
                        "type": "ElasticNetworkInterface",
                        "details": [{"name": "privateIPv4Address", "value": "127.0.0.1"}],
                    }
                ],
            }
            for n, user_id in enumerate(user_ids)
        }

    def list_tasks(self, *, cluster: str, startedBy: str, desiredStatus: str) -> dict:  # noqa: N803 - boto3's names
        task = self.tasks.get(startedBy)
        return {"taskArns": [task["taskArn"]] if task else []}

    def describe_tasks(self, *, cluster: str, tasks: list[str]) -> dict:
        return {"tasks": [t for t in self.tasks.values() if t["taskArn"] in tasks]}


def test_the_server_forwards_a_signed_in_student_and_strips_their_tokens(alb_key, keys, students, conn) -> None:
    import threading
    import urllib.error
    import urllib.request
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from workspace_proxy.server import ProxySettings, make_handler

    seen: list[dict[str, str]] = []

    class Workspace(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            seen.append({k.lower(): v for k, v in self.headers.items()})
            body = f"code-server at {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    a, stopped = students(), students(workspace="FAILED")
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Workspace)
    settings = ProxySettings(
        keys=keys, load_balancer_arn=ALB, cluster="workspaces", connection=lambda: conn,
        ecs=_EcsWithLoopbackTasks(a, stopped), upstream_port=upstream.server_address[1],
    )  # fmt: skip
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(settings))
    for server in (upstream, proxy):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{proxy.server_address[1]}"

    def get(path: str, headers: dict[str, str]) -> tuple[int, str]:
        request = urllib.request.Request(base + path, headers=headers)  # noqa: S310 - loopback
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    try:
        assert get("/?folder=/home/coder", headers_for(alb_key, a)) == (200, "code-server at /?folder=/home/coder")
        assert not [h for h in seen[0] if h.startswith("x-amzn-oidc-")]
        assert get("/", {}) == (401, "no identity from the load balancer")
        status, _ = get("/", headers_for(alb_key, stopped))
        assert status == 403
        # A's own signed identity asking for someone else's in the plain header: not A's, 403.
        assert get("/", {**headers_for(alb_key, a), "x-amzn-oidc-identity": stopped}) == (
            403,
            "the identity headers disagree: this is not your workspace",
        )
        assert len(seen) == 1  # nothing but A's request reached a workspace
        # The proxy closes each connection after its response, and the response says so.
        request = urllib.request.Request(base + "/", headers=headers_for(alb_key, a))  # noqa: S310 - loopback
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            assert response.headers["Connection"] == "close" and response.read() == b"code-server at /"
        # A check that fails on the way (here the database) is answered, not a dropped connection.
        import psycopg
        from workspace_proxy.server import UNAVAILABLE

        def broken() -> None:
            raise psycopg.OperationalError("the database is away")

        settings.connection = broken
        assert get("/", headers_for(alb_key, a)) == (503, UNAVAILABLE)
    finally:
        proxy.shutdown()
        upstream.shutdown()


def test_a_key_the_endpoint_does_not_know_is_refused_not_a_crash(alb_key) -> None:
    import urllib.error

    def unknown(url: str) -> str:
        raise urllib.error.HTTPError(url, 403, "Forbidden", {}, None)  # what the key endpoint answers

    with pytest.raises(NotSignedIn, match="unknown"):
        verify(headers_for(alb_key, str(uuid.uuid4())), keys=KeyCache(REGION, fetch=unknown), load_balancer_arn=ALB)
