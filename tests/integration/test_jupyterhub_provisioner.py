"""The JupyterHub provisioner against the real JupyterHub (``.tools/jupyterhub``), SSM in moto (issue 5).

One hub per module (``local/tools/jupyterhub.py``), its URL and the provisioner service's token
bootstrapped into moto's SSM. The tests look at the hub through its REST API with that same token,
and at the students' server processes through ``/proc``.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from apranova.observability import logger
from functions.provision.tools import Student, ToolFailed, ToolProvisioner, ToolStatus, ToolUnavailable
from functions.provision.tools.jupyterhub import JupyterHubProvisioner, JupyterHubSettings, username_for
from local.tools.jupyterhub import JupyterHubHandle, bootstrap_jupyterhub, start
from tests.integration.tool_server_support import closed_port, misbehaving_server, start_or_skip, wait_for

PREFIX = "/apranova/test"
SERVER = "dp"
ADMIN_ID = str(uuid.uuid4())  # a hub admin whose name is a user id


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterHubHandle]:
    handle = start_or_skip(lambda: start(tmp_path_factory.mktemp("state"), admin_users=[ADMIN_ID]))
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def ssm(hub: JupyterHubHandle) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("ssm", region_name="us-east-1")
        bootstrap_jupyterhub(client, PREFIX, hub)
        yield client


@pytest.fixture(scope="module")
def api(hub: JupyterHubHandle) -> requests.Session:
    """The hub's REST API, to look at what the provisioner did."""
    session = requests.Session()
    session.headers["Authorization"] = f"token {hub.api_token}"
    return session


def settings(prefix: str = PREFIX, **overrides: Any) -> JupyterHubSettings:
    return JupyterHubSettings(ssm_prefix=prefix, **overrides)


def student(track: str = "DP") -> Student:
    user_id = str(uuid.uuid4())
    return Student(user_id=user_id, email=f"{user_id[:8]}@example.com", track=track)


def hub_user(hub: JupyterHubHandle, api: requests.Session, name: str) -> dict[str, Any] | None:
    response = api.get(f"{hub.api_url}/users/{name}", params={"include_stopped_servers": "1"}, timeout=10)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()


def server_processes(name: str) -> list[int]:
    """Processes started for this JupyterHub user (the spawner sets JUPYTERHUB_USER in their environment)."""
    marker = f"JUPYTERHUB_USER={name}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_provision_creates_a_plain_user(hub, ssm, api) -> None:
    provisioner = JupyterHubProvisioner(ssm, settings())
    assert isinstance(provisioner, ToolProvisioner)
    someone = student()
    name = username_for(someone.user_id)
    assert name == someone.user_id.lower()

    result = provisioner.provision(someone)

    assert result.tool == "JUPYTER"
    assert result.status == ToolStatus.PROVISIONED
    assert result.details == {"external_id": name, "username": name, "access_url": f"{hub.url}/user/{name}/"}
    user = hub_user(hub, api, name)
    assert user is not None
    assert user["admin"] is False
    assert user["roles"] == ["user"]  # JupyterHub's default role: the user's own resources only
    # No named server configured: nothing started (the stopped default server is always listed).
    assert set(user["servers"]) <= {""}
    assert not any(server["ready"] or server["pending"] for server in user["servers"].values())
    assert provisioner.status(someone) == ToolStatus.PROVISIONED
    assert hub.api_token not in repr(result)


def test_provision_twice_makes_one_user(hub, ssm, api) -> None:
    provisioner = JupyterHubProvisioner(ssm, settings())
    someone = student()
    name = username_for(someone.user_id)

    first = provisioner.provision(someone)
    second = JupyterHubProvisioner(ssm, settings()).provision(someone)  # a retried step: a new instance

    assert first == second
    users = api.get(f"{hub.api_url}/users", params={"name_filter": name[:13]}, timeout=10).json()
    assert [user["name"] for user in users] == [name]


def test_a_user_the_hub_already_has_is_success(hub, ssm, api) -> None:
    someone = student()
    name = username_for(someone.user_id)
    assert api.post(f"{hub.api_url}/users/{name}", timeout=10).status_code == 201

    result = JupyterHubProvisioner(ssm, settings()).provision(someone)

    assert result.status == ToolStatus.PROVISIONED
    assert hub_user(hub, api, name) is not None


def test_an_admin_of_the_same_name_is_refused(hub, ssm, api) -> None:
    assert hub_user(hub, api, ADMIN_ID)["admin"] is True

    with pytest.raises(ToolFailed, match="admin"):
        JupyterHubProvisioner(ssm, settings()).provision(Student(user_id=ADMIN_ID, email="a@example.com", track="DP"))

    assert hub_user(hub, api, ADMIN_ID)["admin"] is True


def test_the_provisioner_token_cannot_make_admins(hub, api) -> None:
    """The local hub's service role is what production should grant: users and servers, not admin rights."""
    response = api.post(f"{hub.api_url}/users/{uuid.uuid4()}", json={"admin": True}, timeout=10)
    assert response.status_code == 403


def test_deprovision_removes_the_user_and_tolerates_a_missing_one(hub, ssm, api) -> None:
    provisioner = JupyterHubProvisioner(ssm, settings())
    someone = student()
    provisioner.provision(someone)

    provisioner.deprovision(someone)

    assert hub_user(hub, api, username_for(someone.user_id)) is None
    assert provisioner.status(someone) == ToolStatus.NOT_PROVISIONED
    provisioner.deprovision(someone)  # again: nothing to do
    provisioner.deprovision(student())  # never provisioned


def test_named_server_is_started_once_and_deprovision_stops_it(hub, ssm, api) -> None:
    someone = student()
    name = username_for(someone.user_id)
    JupyterHubProvisioner(ssm, settings()).provision(someone)  # a user without the server...
    provisioner = JupyterHubProvisioner(ssm, settings(jupyterhub_named_server=SERVER))
    assert provisioner.status(someone) == ToolStatus.PARTIAL  # ...is half of what this setting asks

    result = provisioner.provision(someone)

    assert result.details["server_name"] == SERVER
    assert result.details["access_url"] == f"{hub.url}/user/{name}/{SERVER}/"
    servers = wait_for(
        lambda: (lambda u: u["servers"] if u["servers"].get(SERVER, {}).get("ready") else None)(
            hub_user(hub, api, name)
        ),
        60,
        "the named server to be ready",
    )
    started = servers[SERVER]["started"]
    assert provisioner.status(someone) == ToolStatus.PROVISIONED
    assert provisioner.provision(someone) == result  # again: the running server is left alone
    assert hub_user(hub, api, name)["servers"][SERVER]["started"] == started
    assert server_processes(name)

    provisioner.deprovision(someone)  # JupyterHub's own user deletion would leave a named server running

    assert hub_user(hub, api, name) is None
    wait_for(lambda: not server_processes(name), 15, "the student's server processes to end")
    assert provisioner.status(someone) == ToolStatus.NOT_PROVISIONED


def test_non_dp_students_and_bad_user_ids_are_refused(hub, ssm) -> None:
    provisioner = JupyterHubProvisioner(ssm, settings())
    with pytest.raises(ToolFailed, match="DP tool"):
        provisioner.provision(student(track="FSD"))
    with pytest.raises(ToolFailed, match="uuid"):
        provisioner.provision(Student(user_id="../admin", email="x@example.com", track="DP"))


def _pointed_at(ssm: Any, url: str, token: str = "not-a-real-token") -> str:  # noqa: S107 - a test value
    prefix = f"/apranova/test-{uuid.uuid4().hex[:8]}"
    ssm.put_parameter(Name=f"{prefix}/tools/jupyterhub/url", Value=url, Type="String")
    ssm.put_parameter(Name=f"{prefix}/tools/jupyterhub/api-token", Value=token, Type="SecureString")
    return prefix


def _every_call_raises(provisioner: JupyterHubProvisioner, error: type[Exception]) -> None:
    someone = student()
    with pytest.raises(error):
        provisioner.provision(someone)
    with pytest.raises(error):
        provisioner.deprovision(someone)
    with pytest.raises(error):
        provisioner.status(someone)


def test_a_hub_refusing_connections_is_unavailable(ssm) -> None:
    prefix = _pointed_at(ssm, f"http://127.0.0.1:{closed_port()}")
    _every_call_raises(JupyterHubProvisioner(ssm, settings(prefix)), ToolUnavailable)


def test_a_hub_answering_500_is_unavailable(ssm) -> None:
    with misbehaving_server(status=500) as url:
        _every_call_raises(JupyterHubProvisioner(ssm, settings(_pointed_at(ssm, url))), ToolUnavailable)


def test_a_hub_answering_429_is_unavailable(ssm) -> None:
    with misbehaving_server(status=429) as url:
        _every_call_raises(JupyterHubProvisioner(ssm, settings(_pointed_at(ssm, url))), ToolUnavailable)


def test_a_hub_that_does_not_answer_in_time_is_unavailable(ssm) -> None:
    with misbehaving_server(status=200, delay=30) as url:
        provisioner = JupyterHubProvisioner(ssm, settings(_pointed_at(ssm, url), jupyterhub_read_timeout=0.3))
        _every_call_raises(provisioner, ToolUnavailable)


def test_a_refused_token_is_a_permanent_failure_without_the_token(hub, ssm) -> None:
    token = "wrong-" + uuid.uuid4().hex
    provisioner = JupyterHubProvisioner(ssm, settings(_pointed_at(ssm, hub.url, token)))

    with pytest.raises(ToolFailed, match="refused the admin token") as caught:
        provisioner.provision(student())

    assert token not in str(caught.value)


def test_a_rotated_token_is_read_again(hub, ssm, api) -> None:
    prefix = _pointed_at(ssm, hub.url, "stale-" + uuid.uuid4().hex)
    provisioner = JupyterHubProvisioner(ssm, settings(prefix))
    with pytest.raises(ToolFailed):
        provisioner.status(student())  # the stale token is now cached
    ssm.put_parameter(
        Name=f"{prefix}/tools/jupyterhub/api-token", Value=hub.api_token, Type="SecureString", Overwrite=True
    )

    assert provisioner.status(student()) == ToolStatus.NOT_PROVISIONED


def test_missing_configuration_is_a_permanent_failure(ssm) -> None:
    provisioner = JupyterHubProvisioner(ssm, settings("/apranova/nowhere"))
    with pytest.raises(ToolFailed, match="missing"):
        provisioner.provision(student())
    prefix = _pointed_at(ssm, "ftp://example.invalid")
    with pytest.raises(ToolFailed, match="base URL"):
        JupyterHubProvisioner(ssm, settings(prefix)).status(student())


@pytest.fixture
def info_logs() -> Iterator[Callable[[], str]]:
    """The functions' Powertools log at INFO (the suite runs it at WARNING), as it would be printed."""
    before = logger.log_level
    stream = io.StringIO()
    previous = logger.registered_handler.setStream(stream)
    logger.setLevel("INFO")
    try:
        yield stream.getvalue
    finally:
        logger.setLevel(before)
        logger.registered_handler.setStream(previous)


def test_the_log_names_the_student_and_holds_no_secret(hub, ssm, info_logs) -> None:
    provisioner = JupyterHubProvisioner(ssm, settings())
    someone = student()

    provisioner.provision(someone)
    provisioner.deprovision(someone)

    logged = info_logs()
    assert someone.user_id in logged and "provisioned" in logged and "deprovisioned" in logged
    assert hub.api_token not in logged
