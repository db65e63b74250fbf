"""Curriculum use cases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from functions.curriculum import repository
from functions.curriculum.models import Track, TrackList


def list_tracks(fetch: Callable[[], list[dict[str, Any]]] = repository.active_tracks) -> TrackList:
    return TrackList(items=[Track.model_validate(row) for row in fetch()])
