"""A DP student's own work pool on the shared Prefect server, through its REST API (``/api``).

The server's base URL (its root, where the UI is; the API is under ``/api``) is the SSM parameter
``{SSM_PREFIX}/tools/prefect/url``. A server started with ``PREFECT_SERVER_API_AUTH_STRING``
requires HTTP basic auth on every call: its ``user:password`` is the optional SecureString
``{SSM_PREFIX}/tools/prefect/auth-string``, sent the way Prefect's own client sends
``PREFECT_API_AUTH_STRING``. Without that parameter no credential is sent.

The work pool is ``student-`` + 20 hex of a salted hash of the user id: stable, unique for every
practical purpose (80 bits), and it does not show the user id to the other users of the server,
who can all list work pools. It is created with the configured type (``process`` by default), an
empty base job template (the worker fills in its default, as Prefect's workers do) and the
configured concurrency limit.

provision: ``POST /api/work_pools/`` (201, or 409 when it exists: both success; an existing pool
whose concurrency limit or description drifted is repaired with ``PATCH``, one of another type is
refused). deprovision: ``DELETE /api/work_pools/{name}`` (204, or 404: both success).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any
from urllib.parse import quote

import requests
from pydantic import Field

from apranova.observability import logger
from apranova.settings import BaseSettings
from functions.provision.tools import Student, ToolFailed, ToolResult, ToolStatus, ToolUnavailable
from functions.provision.tools._http import ToolHttp, ToolParameters

TOOL = "PREFECT"
_NAME_SALT = b"apranova/prefect-work-pool/v1:"
DESCRIPTION = "ApraNova DP student work pool"


class PrefectSettings(BaseSettings):
    """Environment: upper-cased names (``SSM_PREFIX``, ``PREFECT_WORK_POOL_TYPE``, ...)."""

    ssm_prefix: str = Field(pattern=r"^/[A-Za-z0-9_.\-/]*[A-Za-z0-9_.\-]$")
    prefect_work_pool_type: str = Field("process", pattern=r"^[a-z0-9][a-z0-9:_-]{0,62}$")
    prefect_work_pool_concurrency_limit: int | None = Field(2, ge=0, le=10_000)  # None: unlimited
    prefect_connect_timeout: float = Field(3.0, gt=0, le=60)
    prefect_read_timeout: float = Field(10.0, gt=0, le=120)
    prefect_parameters_max_age: int = Field(300, ge=0, le=3600)


def work_pool_for(user_id: str) -> str:
    """The student's work pool name; ``ToolFailed`` when the user id is not a uuid."""
    try:
        uid = uuid.UUID(str(user_id))
    except ValueError:
        raise ToolFailed("the user id is not a uuid") from None
    return "student-" + hashlib.sha256(_NAME_SALT + uid.bytes).hexdigest()[:20]


class PrefectProvisioner:
    """``ToolProvisioner`` for the shared Prefect server. ``ssm_client`` is a boto3 SSM client."""

    name = TOOL

    def __init__(self, ssm_client: Any, settings: PrefectSettings, session: requests.Session | None = None) -> None:
        self._settings = settings
        self._parameters = ToolParameters(ssm_client, settings.prefect_parameters_max_age)
        self._http = ToolHttp(
            "Prefect", session or requests.Session(), settings.prefect_connect_timeout, settings.prefect_read_timeout
        )
        prefix = settings.ssm_prefix
        self._url_parameter = f"{prefix}/tools/prefect/url"
        self._auth_parameter = f"{prefix}/tools/prefect/auth-string"

    # -- the interface ----------------------------------------------------------------------------

    def provision(self, student: Student) -> ToolResult:
        if student.track != "DP":
            raise ToolFailed(f"Prefect is a DP tool, not one of track {student.track!r}")
        pool = work_pool_for(student.user_id)
        wanted = {"description": DESCRIPTION, "concurrency_limit": self._settings.prefect_work_pool_concurrency_limit}
        action = "create Prefect work pool"
        response = self._api(
            "POST",
            "/work_pools/",
            action=action,
            ok=(201, 409),
            json={"name": pool, "type": self._settings.prefect_work_pool_type, "base_job_template": {}, **wanted},
        )
        repaired = False
        if response.status_code == 409:
            current = self._work_pool(pool)
            if current is None:
                raise ToolUnavailable(f"{action}: the work pool vanished (a deprovision ran at the same time)")
            if current.get("type") != self._settings.prefect_work_pool_type:
                raise ToolFailed(f"{action}: {pool} exists with another type")
            drift = {key: value for key, value in wanted.items() if current.get(key) != value}
            if drift:
                self._api("PATCH", f"/work_pools/{pool}", action="repair Prefect work pool", ok=(204,), json=drift)
                repaired = True
        logger.info(
            "Prefect work pool provisioned",
            extra={"user_id": student.user_id, "work_pool": pool, "pool_created": response.status_code == 201},
        )
        base = self._parameters.base_url(self._url_parameter)
        return ToolResult(
            tool=TOOL,
            status=ToolStatus.PROVISIONED,
            details={
                "external_id": pool,
                "work_pool": pool,
                "access_url": f"{base}/work-pools/work-pool/{quote(pool)}",
                **({"repaired": True} if repaired else {}),
            },
        )

    def deprovision(self, student: Student) -> None:
        pool = work_pool_for(student.user_id)
        response = self._api("DELETE", f"/work_pools/{pool}", action="delete Prefect work pool", ok=(204, 404))
        logger.info(
            "Prefect work pool deprovisioned",
            extra={"user_id": student.user_id, "work_pool": pool, "existed": response.status_code == 204},
        )

    def status(self, student: Student) -> ToolStatus:
        pool = self._work_pool(work_pool_for(student.user_id))
        return ToolStatus.NOT_PROVISIONED if pool is None else ToolStatus.PROVISIONED

    # -- the server's API -------------------------------------------------------------------------

    def _api(self, method: str, path: str, *, action: str, ok: tuple[int, ...], json: Any = None) -> requests.Response:
        base = self._parameters.base_url(self._url_parameter)
        for attempt in range(2):  # refused credentials are re-read once from SSM: they may have been rotated
            headers = {"Accept": "application/json"}
            auth = self._parameters.get(self._auth_parameter, required=False, refresh=attempt > 0)
            if auth:
                headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
            response = self._http.request(method, f"{base}/api{path}", action=action, headers=headers, json=json)
            if response.status_code not in (401, 403):
                break
        if response.status_code in ok:
            return response
        if response.status_code in (401, 403):
            raise ToolFailed(f"{action}: Prefect refused the credentials ({response.status_code})")
        raise self._http.refused(action, response)

    def _work_pool(self, pool: str) -> dict[str, Any] | None:
        response = self._api("GET", f"/work_pools/{pool}", action="read Prefect work pool", ok=(200, 404))
        if response.status_code == 404:
            return None
        try:
            model = response.json()
        except ValueError:
            raise ToolFailed("read Prefect work pool: the answer is not JSON") from None
        if not isinstance(model, dict) or model.get("name") != pool:
            raise ToolFailed("read Prefect work pool: the answer is not this work pool")
        return model
