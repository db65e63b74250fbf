"""Request and response models of the policies and consent routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# A published version: dotted numbers (the tables' CHECK), compared as numbers.
VERSION_PATTERN = r"^[0-9]{1,6}(\.[0-9]{1,6}){0,4}$"


class PolicyUpcoming(BaseModel):
    version: str
    effective_at: datetime


class PolicyDocument(BaseModel):
    kind: Literal["privacy", "terms"]
    version: str = Field(description="The version in force.")
    content: str
    summary: str
    effective_at: datetime
    upcoming: PolicyUpcoming | None = Field(
        description="A version published for a later date, if any: it replaces this one at effective_at."
    )


class ConsentAcceptance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    privacy_version: str = Field(max_length=20, pattern=VERSION_PATTERN, examples=["1.0"])
    terms_version: str = Field(max_length=20, pattern=VERSION_PATTERN, examples=["1.0"])


class ConsentRecord(BaseModel):
    id: int
    privacy_version: str
    terms_version: str
    accepted_at: datetime
    source: Literal["SIGNUP", "ANONYMOUS_CHECKOUT", "ACCEPT", "ADMIN"]
    ip_address: str | None
    user_agent: str | None
    in_force: bool = Field(description="Both versions are the ones in force now.")


class ConsentPage(BaseModel):
    items: list[ConsentRecord]
    next_cursor: str | None = None
