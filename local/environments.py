"""Lambda's execution environments of a function, imitated in this one process.

Lambda serves each request in an environment that serves nothing else meanwhile, and starts another
environment when all of a function's environments are busy: requests to one function run at once,
each with its own database connection and its own module state. The local server and the local
Lambda invoke (the workflow steps) borrow an environment here for every call:

- the function's first environment is its module as imported (``sys.modules``) and stays warm, so
  a test or a developer that patches or resets a module sees that in the next request;
- while it is busy, a request gets an extra environment: a fresh copy of the handler's module (a
  cold start: the Powertools resolver, which keeps the current event on its app object, and the
  module's own caches are its own) with a connection of its own (``apranova.db``'s slot). An extra
  environment is retired when its request ends (Lambda scaling back down), so no copy outlives the
  burst it served.

Only the handler's own module is copied; the modules it imports (services, the layer) are shared,
as their state is either immutable settings or thread-safe clients.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from apranova import db
from local import resolver_threads

# Powertools keeps the request being served on its resolver *class*: per thread here, since the
# environments of this process serve their requests at once, each in a thread of its own.
resolver_threads.install()

# Modules copied for extra environments: the in-repo functions (a test's own handler module is
# shared: copying a test module would run its module code again).
COPIED_PACKAGES = ("functions.",)


@dataclass
class Environment:
    function: str
    number: int  # 0 is the warm, first environment
    module: ModuleType
    attribute: str

    @property
    def slot(self) -> str:
        """The environment's own connection in ``apranova.db``."""
        return self.function if self.number == 0 else f"{self.function}#{self.number}"

    @property
    def handler(self) -> Callable[[Any, Any], Any]:
        return getattr(self.module, self.attribute)


class Environments:
    """Every function's environments: at most one request in each at a time."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._first_busy: set[tuple[str, str]] = set()
        self._numbers: dict[tuple[str, str], int] = {}
        self._in_flight: dict[str, int] = {}
        self.peak: dict[str, int] = {}  # the most environments a function had busy at once

    @contextmanager
    def borrow(self, function: str, handler: str) -> Iterator[Environment]:
        """An environment of ``function`` (``handler`` is ``"module:attribute"``) for one call; the
        call runs with the environment's own database connection."""
        module_name, _, attribute = handler.partition(":")
        key = (function, handler)
        with self._guard:
            first = key not in self._first_busy
            if first:
                self._first_busy.add(key)
                number = 0
            else:
                number = self._numbers[key] = self._numbers.get(key, 0) + 1
            self._in_flight[function] = in_flight = self._in_flight.get(function, 0) + 1
            self.peak[function] = max(self.peak.get(function, 0), in_flight)
        try:
            module = importlib.import_module(module_name) if first else _fresh_copy(module_name, number)
            environment = Environment(function, number, module, attribute or "lambda_handler")
            with db.function_slot(environment.slot):
                yield environment
        finally:
            if not first:
                db.release(f"{function}#{number}")
                sys.modules.pop(_copy_name(module_name, number), None)
            with self._guard:
                self._in_flight[function] -= 1
                if first:
                    self._first_busy.discard(key)


def _copy_name(module_name: str, number: int) -> str:
    return f"{module_name}.__environment_{number}__"


def _fresh_copy(module_name: str, number: int) -> ModuleType:
    """The handler's module imported again under a name of its own (a cold start)."""
    original = importlib.import_module(module_name)
    if not module_name.startswith(COPIED_PACKAGES) or original.__spec__ is None or not original.__file__:
        return original
    name = _copy_name(module_name, number)
    spec = importlib.util.spec_from_file_location(name, original.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    module.__package__ = original.__package__
    sys.modules[name] = module  # pydantic resolves the module's annotations through sys.modules
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
