"""The Prefect provisioner against the real Prefect server (``.tools/prefect``), SSM in moto (issue 5).

One server per module (``local/tools/prefect.py``, SQLite, basic auth on), its URL and auth string
bootstrapped into moto's SSM. The tests look at the server through its REST API.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from apranova.observability import logger
from functions.provision.tools import Student, ToolFailed, ToolProvisioner, ToolStatus, ToolUnavailable
from functions.provision.tools.prefect import DESCRIPTION, PrefectProvisioner, PrefectSettings, work_pool_for
from local.tools.prefect import PrefectHandle, bootstrap_prefect, start
from tests.integration.tool_server_support import closed_port, misbehaving_server, start_or_skip

PREFIX = "/apranova/test"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectHandle]:
    handle = start_or_skip(lambda: start(tmp_path_factory.mktemp("state")))
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def ssm(server: PrefectHandle) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("ssm", region_name="us-east-1")
        bootstrap_prefect(client, PREFIX, server)
        yield client


@pytest.fixture(scope="module")
def api(server: PrefectHandle) -> requests.Session:
    """The server's REST API, to look at what the provisioner did."""
    session = requests.Session()
    user, password = server.auth_string.split(":", 1)
    session.auth = (user, password)
    return session


def settings(prefix: str = PREFIX, **overrides: Any) -> PrefectSettings:
    return PrefectSettings(ssm_prefix=prefix, **overrides)


def student(track: str = "DP") -> Student:
    user_id = str(uuid.uuid4())
    return Student(user_id=user_id, email=f"{user_id[:8]}@example.com", track=track)


def work_pool(server: PrefectHandle, api: requests.Session, name: str) -> dict[str, Any] | None:
    response = api.get(f"{server.api_url}/work_pools/{name}", timeout=10)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()


def pools_named(server: PrefectHandle, api: requests.Session, name: str) -> list[dict[str, Any]]:
    response = api.post(f"{server.api_url}/work_pools/filter", json={"work_pools": {"name": {"any_": [name]}}})
    response.raise_for_status()
    return response.json()


def test_provision_creates_the_students_work_pool(server, ssm, api) -> None:
    provisioner = PrefectProvisioner(ssm, settings())
    assert isinstance(provisioner, ToolProvisioner)
    someone = student()
    name = work_pool_for(someone.user_id)
    assert name.startswith("student-") and someone.user_id.replace("-", "")[:8] not in name

    result = provisioner.provision(someone)

    assert result.tool == "PREFECT"
    assert result.status == ToolStatus.PROVISIONED
    assert result.details == {
        "external_id": name,
        "work_pool": name,
        "access_url": f"{server.url}/work-pools/work-pool/{name}",
    }
    pool = work_pool(server, api, name)
    assert pool is not None
    assert (pool["type"], pool["concurrency_limit"], pool["description"]) == ("process", 2, DESCRIPTION)
    assert provisioner.status(someone) == ToolStatus.PROVISIONED
    assert server.auth_string not in repr(result)
    page = requests.get(result.details["access_url"], headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower()  # the UI's page, no login in the URL


def test_provision_twice_makes_one_work_pool(server, ssm, api) -> None:
    someone = student()
    first = PrefectProvisioner(ssm, settings()).provision(someone)
    second = PrefectProvisioner(ssm, settings()).provision(someone)  # a retried step: a new instance

    assert first == second
    assert len(pools_named(server, api, work_pool_for(someone.user_id))) == 1


def test_an_existing_work_pool_is_success_and_drift_is_repaired(server, ssm, api) -> None:
    someone = student()
    name = work_pool_for(someone.user_id)
    made = api.post(f"{server.api_url}/work_pools/", json={"name": name, "type": "process", "concurrency_limit": 9})
    assert made.status_code == 201

    result = PrefectProvisioner(ssm, settings()).provision(someone)

    assert result.status == ToolStatus.PROVISIONED
    assert result.details["repaired"] is True
    pool = work_pool(server, api, name)
    assert (pool["concurrency_limit"], pool["description"], pool["id"]) == (2, DESCRIPTION, made.json()["id"])


def test_a_work_pool_of_another_type_is_refused(server, ssm, api) -> None:
    someone = student()
    name = work_pool_for(someone.user_id)
    assert api.post(f"{server.api_url}/work_pools/", json={"name": name, "type": "docker"}).status_code == 201

    with pytest.raises(ToolFailed, match="another type"):
        PrefectProvisioner(ssm, settings()).provision(someone)

    assert work_pool(server, api, name)["type"] == "docker"


def test_deprovision_removes_the_work_pool_and_tolerates_a_missing_one(server, ssm, api) -> None:
    provisioner = PrefectProvisioner(ssm, settings())
    someone = student()
    provisioner.provision(someone)

    provisioner.deprovision(someone)

    assert work_pool(server, api, work_pool_for(someone.user_id)) is None
    assert provisioner.status(someone) == ToolStatus.NOT_PROVISIONED
    provisioner.deprovision(someone)  # again: nothing to do
    provisioner.deprovision(student())  # never provisioned


def test_non_dp_students_and_bad_user_ids_are_refused(server, ssm) -> None:
    provisioner = PrefectProvisioner(ssm, settings())
    with pytest.raises(ToolFailed, match="DP tool"):
        provisioner.provision(student(track="FSD"))
    with pytest.raises(ToolFailed, match="uuid"):
        provisioner.provision(Student(user_id="not-a-uuid", email="x@example.com", track="DP"))


def _pointed_at(ssm: Any, url: str, auth_string: str | None = None) -> str:
    prefix = f"/apranova/test-{uuid.uuid4().hex[:8]}"
    ssm.put_parameter(Name=f"{prefix}/tools/prefect/url", Value=url, Type="String")
    if auth_string is not None:
        ssm.put_parameter(Name=f"{prefix}/tools/prefect/auth-string", Value=auth_string, Type="SecureString")
    return prefix


def _every_call_raises(provisioner: PrefectProvisioner, error: type[Exception]) -> None:
    someone = student()
    with pytest.raises(error):
        provisioner.provision(someone)
    with pytest.raises(error):
        provisioner.deprovision(someone)
    with pytest.raises(error):
        provisioner.status(someone)


def test_a_server_refusing_connections_is_unavailable(ssm) -> None:
    prefix = _pointed_at(ssm, f"http://127.0.0.1:{closed_port()}")
    _every_call_raises(PrefectProvisioner(ssm, settings(prefix)), ToolUnavailable)


def test_a_server_answering_500_is_unavailable(ssm) -> None:
    with misbehaving_server(status=500) as url:
        _every_call_raises(PrefectProvisioner(ssm, settings(_pointed_at(ssm, url, "a:b"))), ToolUnavailable)


def test_a_server_answering_503_is_unavailable(ssm) -> None:
    with misbehaving_server(status=503) as url:
        _every_call_raises(PrefectProvisioner(ssm, settings(_pointed_at(ssm, url))), ToolUnavailable)


def test_a_server_that_does_not_answer_in_time_is_unavailable(ssm) -> None:
    with misbehaving_server(status=201, delay=30) as url:
        provisioner = PrefectProvisioner(ssm, settings(_pointed_at(ssm, url), prefect_read_timeout=0.3))
        _every_call_raises(provisioner, ToolUnavailable)


def test_missing_or_wrong_credentials_are_a_permanent_failure_without_the_secret(server, ssm) -> None:
    with pytest.raises(ToolFailed, match="refused the credentials"):
        PrefectProvisioner(ssm, settings(_pointed_at(ssm, server.url))).provision(student())  # no auth string

    wrong = "admin:" + uuid.uuid4().hex
    with pytest.raises(ToolFailed, match="refused the credentials") as caught:
        PrefectProvisioner(ssm, settings(_pointed_at(ssm, server.url, wrong))).provision(student())
    assert wrong.split(":")[1] not in str(caught.value)


def test_a_rotated_auth_string_is_read_again(server, ssm) -> None:
    prefix = _pointed_at(ssm, server.url, "admin:stale")
    provisioner = PrefectProvisioner(ssm, settings(prefix))
    with pytest.raises(ToolFailed):
        provisioner.status(student())  # the stale string is now cached
    ssm.put_parameter(
        Name=f"{prefix}/tools/prefect/auth-string", Value=server.auth_string, Type="SecureString", Overwrite=True
    )

    assert provisioner.status(student()) == ToolStatus.NOT_PROVISIONED


def test_missing_configuration_is_a_permanent_failure(ssm) -> None:
    with pytest.raises(ToolFailed, match="missing"):
        PrefectProvisioner(ssm, settings("/apranova/nowhere")).provision(student())
    with pytest.raises(ToolFailed, match="credentials in the URL"):
        PrefectProvisioner(ssm, settings(_pointed_at(ssm, "http://admin:pw@127.0.0.1:1"))).status(student())


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


def test_the_log_names_the_student_and_holds_no_secret(server, ssm, info_logs) -> None:
    provisioner = PrefectProvisioner(ssm, settings())
    someone = student()

    provisioner.provision(someone)
    provisioner.deprovision(someone)

    logged = info_logs()
    assert someone.user_id in logged and "provisioned" in logged and "deprovisioned" in logged
    assert server.auth_string.split(":", 1)[1] not in logged
