"""The migration's maintenance step for the shared tools: each tool's own role and database on a
server that checks passwords, made by a master user that is not a superuser (as on RDS); the admin
credentials written where the provisioning steps read them (moto's SSM)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import psycopg
import pytest
from moto import mock_aws
from psycopg import sql

from functions.migrate.tool_accounts import ensure_tool_database, publish_admin_credentials
from tests import password_postgres

pytestmark = pytest.mark.skipif(not password_postgres.available(), reason="no initdb on this machine")

MASTER = "apranova_master"


@pytest.fixture(scope="module")
def server() -> Iterator[password_postgres.PasswordServer]:
    with password_postgres.password_server() as server:
        with psycopg.connect(server.url(), autocommit=True) as su:
            su.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEROLE CREATEDB PASSWORD 'master-pw'").format(sql.Identifier(MASTER))
            )
            su.execute("CREATE DATABASE apranova")
        with psycopg.connect(server.url("apranova"), autocommit=True) as su:
            su.execute("CREATE TABLE users (id int)")
        yield server


def test_each_tool_gets_its_own_login_and_database_and_nothing_else(server) -> None:
    with psycopg.connect(server.url("postgres", user=MASTER, password="master-pw"), autocommit=True) as master:
        assert ensure_tool_database(master, role="apranova_superset", password="first-pw", database="apranova_superset")
        # Idempotent: a second deploy with a new secret value changes the password, keeps the data.
        assert not ensure_tool_database(
            master, role="apranova_superset", password="second-pw", database="apranova_superset"
        )
    with psycopg.connect(server.url("apranova_superset", user="apranova_superset", password="second-pw")) as tool:
        tool.execute("CREATE TABLE dashboards (id int)")  # it owns its database
        assert tool.execute("SELECT current_user").fetchone() == ("apranova_superset",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(server.url("apranova_superset", user="apranova_superset", password="first-pw"))
    # The application's data is not the tool's to read.
    with psycopg.connect(server.url("apranova", user="apranova_superset", password="second-pw")) as tool:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            tool.execute("SELECT * FROM users")


def test_the_admin_credentials_land_where_the_provisioning_steps_read_them() -> None:
    with mock_aws():
        ssm = boto3.client("ssm", region_name="eu-west-1")
        names = publish_admin_credentials(
            ssm, "/apranova/t", "superset", {"username": "apranova-provisioner", "password": "s3cret"}
        )
        publish_admin_credentials(ssm, "/apranova/t", "prefect", {"username": "apranova", "password": "p4ss"})
        publish_admin_credentials(ssm, "/apranova/t", "jupyterhub", {"service": "x", "api-token": "tok"})
        values = {
            p["Name"]: (p["Type"], p["Value"])
            for p in ssm.get_parameters_by_path(Path="/apranova/t/tools", Recursive=True, WithDecryption=True)[
                "Parameters"
            ]
        }
    assert names == ["/apranova/t/tools/superset/admin-username", "/apranova/t/tools/superset/admin-password"]
    assert values == {
        "/apranova/t/tools/superset/admin-username": ("SecureString", "apranova-provisioner"),
        "/apranova/t/tools/superset/admin-password": ("SecureString", "s3cret"),
        "/apranova/t/tools/prefect/auth-string": ("SecureString", "apranova:p4ss"),
        "/apranova/t/tools/jupyterhub/api-token": ("SecureString", "tok"),
    }
