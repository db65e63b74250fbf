"""Request and response models of the admin API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["student", "trainer", "admin"]


class RoleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role


class RoleChanged(BaseModel):
    id: str
    email: str
    role: Role
    previous_role: Role


class ManualEnrollment(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=2000)

    track: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,15}$", examples=["DP"])
    reason: str = Field(min_length=3, max_length=2000, description="Why the student is enrolled without payment.")


class WorkflowStarted(BaseModel):
    user_id: str
    track: str
    workflow: Literal["enrollment"]
    execution: str = Field(description="The Step Functions execution name.")
    status: Literal["STARTED"]
