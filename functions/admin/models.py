"""Request and response models of the admin API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Role = Literal["student", "trainer", "admin"]


class RoleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role


class RoleChanged(BaseModel):
    id: str
    email: str
    role: Role
    previous_role: Role
