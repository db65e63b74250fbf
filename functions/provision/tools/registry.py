"""Each tool's provisioner, built once per warm environment from its settings.

Only the tool a step function serves is imported and configured, so a step's cold start and its
IAM role carry that tool alone. Built under a lock: in Lambda an environment serves one request at a
time, but the local stack's environments of a function share this module and run at once, and a
burst of them found the cache empty together and each built the provisioner (boto3 clients made
from the default session by concurrent threads, which boto3 documents as unsafe, and most of the
steps' CPU under 50 enrollments at once).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from apranova.settings import BaseSettings, load
from functions.provision.tools import ToolProvisioner


class AdminConnectionSettings(BaseSettings):
    """How the student-database step reaches the students' database as its administrator.

    Locally a conninfo; in AWS the RDS master secret (Secrets Manager JSON), read at use (cached a
    few minutes, re-read when the server refuses the password: a rotation), over TLS verified
    against the RDS CA bundle the layer ships (``apranova.tls``).
    """

    students_db_admin_url: str | None = None
    students_db_admin_secret_arn: str | None = None
    students_db_admin_host: str | None = None  # where the functions connect (the instance endpoint)


def _boto3(service: str) -> Any:
    import boto3

    return boto3.client(service)


def _students_admin_conninfo() -> str | Callable[[bool], str]:
    """A fixed conninfo (``STUDENTS_DB_ADMIN_URL``), or a reader of the current one from the secret."""
    config = load(AdminConnectionSettings)
    if config.students_db_admin_url:
        return config.students_db_admin_url
    secret_arn = config.students_db_admin_secret_arn
    if not secret_arn:
        from apranova.errors import ConfigurationError

        raise ConfigurationError("STUDENTS_DB_ADMIN_URL or STUDENTS_DB_ADMIN_SECRET_ARN (missing)")

    def read(force: bool) -> str:
        from psycopg.conninfo import make_conninfo

        from apranova import secrets, tls
        from functions.provision.tools.student_database import StudentDatabaseSettings

        secret = secrets.secrets_manager_json(secret_arn, force=force)
        return make_conninfo(
            host=config.students_db_admin_host or secret["host"],
            port=secret.get("port", 5432),
            dbname=load(StudentDatabaseSettings).students_db_name,
            user=secret["username"],
            password=secret["password"],
            **tls.verified(),
        )

    return read


def _student_database() -> ToolProvisioner:
    from functions.provision.tools.student_database import (
        StudentDatabaseProvisioner,
        StudentDatabaseSettings,
        connector,
    )

    return StudentDatabaseProvisioner(
        connector(_students_admin_conninfo()), _boto3("ssm"), load(StudentDatabaseSettings)
    )


def _superset() -> ToolProvisioner:
    from functions.provision.tools.superset import SupersetProvisioner, SupersetSettings

    return SupersetProvisioner(_boto3("ssm"), load(SupersetSettings))


def _jupyter() -> ToolProvisioner:
    from functions.provision.tools.jupyterhub import JupyterHubProvisioner, JupyterHubSettings

    return JupyterHubProvisioner(_boto3("ssm"), load(JupyterHubSettings))


def _prefect() -> ToolProvisioner:
    from functions.provision.tools.prefect import PrefectProvisioner, PrefectSettings

    return PrefectProvisioner(_boto3("ssm"), load(PrefectSettings))


def _workspace() -> ToolProvisioner:
    from functions.provision.tools.workspace import from_environment

    return from_environment()


BUILDERS: dict[str, Callable[[], ToolProvisioner]] = {
    "WORKSPACE": _workspace,
    "STUDENT_DATABASE": _student_database,
    "SUPERSET": _superset,
    "PREFECT": _prefect,
    "JUPYTER": _jupyter,
}


_built: dict[str, ToolProvisioner] = {}
_building = {tool: threading.Lock() for tool in BUILDERS}  # per tool: one tool's build waits for no other


def provisioner(tool: str) -> ToolProvisioner:
    built = _built.get(tool)
    if built is None:
        with _building[tool]:
            built = _built.get(tool)
            if built is None:
                built = _built[tool] = BUILDERS[tool]()
    return built


def reset() -> None:
    _built.clear()
