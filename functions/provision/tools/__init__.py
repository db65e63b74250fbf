"""The provisioner interface every per-student tool implements, and its error classes.

A provisioner is idempotent: ``provision`` run again finds its work done (or repairs what a
failed run left half-made) and ``deprovision`` is tolerant of a tool that was never provisioned.
Failures are one of two named classes, so the workflow retries by name: ``ToolUnavailable``
(transient: the tool or its database refuses connections, is busy, times out) and ``ToolFailed``
(permanent: bad input or configuration, a refusal that a retry will not change). Messages never
carry a secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

# How long a JupyterHub one-time sign-in link lives. Here, not in the hub's provisioner, so the
# tools API can say it without importing the provisioner (requests, boto3) at cold start.
JUPYTER_SIGN_IN_SECONDS = 60


@dataclass(frozen=True)
class Student:
    user_id: str  # users.id, the Cognito sub
    email: str
    track: str  # DP | FSD


class ToolStatus(StrEnum):
    PROVISIONED = "PROVISIONED"
    NOT_PROVISIONED = "NOT_PROVISIONED"
    PARTIAL = "PARTIAL"  # some pieces exist: provision repairs it, deprovision removes it


@dataclass(frozen=True)
class ToolResult:
    tool: str
    status: str
    details: dict[str, Any] = field(default_factory=dict)  # names and URLs only, never a secret


class ToolError(Exception):
    """A provisioner failure; the class name is the error type the workflow sees."""


class ToolUnavailable(ToolError):
    """Transient: retry with backoff."""


class ToolFailed(ToolError):
    """Permanent: record the failure and alert; a retry will not help."""


class ToolNotConfigured(ToolFailed):
    """The tool is not configured in this deployment (no URL parameter, e.g. dev): provisioning
    fails as before, while deprovisioning records the tool as NOT_CONFIGURED and goes on."""


@runtime_checkable
class ToolProvisioner(Protocol):
    name: str

    def provision(self, student: Student) -> ToolResult: ...

    def deprovision(self, student: Student) -> None: ...

    def status(self, student: Student) -> ToolStatus: ...
