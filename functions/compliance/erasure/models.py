"""Request and response models of the right to erasure: ask for the account's deletion (with the
password), cancel it during the grace period. Requests forbid unknown fields."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class DeleteAccountRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Checked with Cognito; never stored, logged or echoed.
    password: str = Field(min_length=1, max_length=256)
    reason: str | None = Field(default=None, max_length=1000, description="Optional: why the account is closed.")

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return value.strip() or None


class DeletionScheduled(BaseModel):
    id: str
    status: Literal["SCHEDULED"]
    scheduled_for: datetime


class DeletionCancelled(BaseModel):
    id: str
    status: Literal["CANCELLED"]
    cancelled_at: datetime
