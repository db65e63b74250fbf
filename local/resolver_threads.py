"""Powertools' resolvers keep the request being served on their *class* (``BaseRouter.current_event``
and ``BaseRouter.lambda_context`` are class attributes, set by ``resolve``). In Lambda that is one
request per process; the local stack serves many requests at once in one process (local/
environments.py), so a request could read another's event: a checkout answered with the body of a
webhook delivery made at the same moment. ``install()`` makes both attributes per thread - each
request is served in a thread of its own - so every environment reads its own request, as in AWS.
"""

from __future__ import annotations

import threading
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

_ATTRIBUTES = ("current_event", "lambda_context")
_lock = threading.Lock()


class _PerThread:
    """A data descriptor whose value is the one set in the calling thread."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._local = threading.local()

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        try:
            return self._local.value
        except AttributeError:
            raise AttributeError(self._name) from None

    def __set__(self, obj: Any, value: Any) -> None:
        self._local.value = value


def install() -> None:
    """Idempotent. Instances and subclasses find the descriptor on ``BaseRouter``; ``BaseRouter.x = v``
    (what ``resolve`` does) reaches it through a metaclass that holds the same descriptor."""
    with _lock:
        if isinstance(BaseRouter.__dict__.get(_ATTRIBUTES[0]), _PerThread):
            return
        descriptors = {name: _PerThread(name) for name in _ATTRIBUTES}
        for name, descriptor in descriptors.items():
            type.__setattr__(BaseRouter, name, descriptor)
        meta = type("PerThreadRouterMeta", (type(BaseRouter),), dict(descriptors))
        BaseRouter.__class__ = meta  # type: ignore[method-assign] # the point: a class-level descriptor per thread
