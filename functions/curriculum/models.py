"""Request and response models of the curriculum API."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Track(BaseModel):
    code: str = Field(examples=["DP"])
    name: str
    description: str
    icon: str | None = None
    weeks: int
    price_cents: int = Field(description="Price in the currency's minor unit (cents).")
    currency: str = Field(examples=["USD"])
    project_count: int


class TrackList(BaseModel):
    items: list[Track]
    next_cursor: str | None = None
