"""Response models of the tools API. Every one of them is sent with ``Cache-Control: no-store``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DbCredentials(BaseModel):
    """How the student connects to their own schema in the students' database."""

    model_config = ConfigDict(populate_by_name=True)

    host: str
    port: int
    dbname: str
    user: str
    password: str
    schema_name: str = Field(alias="schema", description="The student's own schema (also their search_path).")
    connection_uri: str = Field(
        description="The same credentials as one libpq URI (postgresql://user:password@host:port/dbname?sslmode=…)."
    )


class ToolAccess(BaseModel):
    tool: str = Field(examples=["PREFECT"])
    url: str | None = Field(description="The tool's address; never holds a token or password.")
    username: str | None = None


class JupyterAccess(ToolAccess):
    login_url: str = Field(
        description=(
            "A one-time link that signs the student in to JupyterHub and opens their server: it works "
            "once, within login_expires_in seconds (fetch it when the student opens the hub)."
        )
    )
    login_expires_in: int = Field(examples=[60])


class SupersetAccess(ToolAccess):
    password: str | None = Field(None, description="Null when the tool has no password of the student's.")


WorkspaceStatusName = Literal["STOPPED", "STARTING", "RUNNING", "STOPPING"]


class WorkspaceStatus(BaseModel):
    status: WorkspaceStatusName
    url: str | None = Field(None, description="code-server's address, while RUNNING.")
    started_at: datetime | None = None


class WorkspaceAccess(WorkspaceStatus):
    password: str = Field(description="code-server's password.")
