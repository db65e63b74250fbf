"""Lambda's execution environments of a function, imitated in this one process.

Lambda serves each request in an environment that serves nothing else meanwhile, and starts another
environment when all of a function's environments are busy: requests to one function run at once,
each with its own database connection and its own module state. The local server and the local
Lambda invoke (the workflow steps) borrow an environment here for every call:

- the function's first environment is its module as imported (``sys.modules``) and stays warm, so
  a test or a developer that patches or resets a module sees that in the next request;
- while it is busy, a request gets an extra environment: a fresh copy of the handler's module (a
  cold start: the Powertools resolver, which keeps the current event on its app object, and the
  module's own caches are its own) with a connection of its own (``apranova.db``'s slot). Between
  its calls an extra environment stays warm, as Lambda keeps one, and serves the function's next
  call that finds the first one busy; idle for ``IDLE_S`` (2 s), it is retired (Lambda scaling back
  down), so no copy outlives the burst it served by much.

Only the handler's own module is copied; the modules it imports (services, the layer) are shared,
as their state is either immutable settings or thread-safe clients. A Powertools Router is shared
too, and points at the resolver that included it last: so no request state is read through a
router (apranova.api keeps the caller in a context variable, the request's own here and in Lambda).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import CodeType, ModuleType
from typing import Any

from apranova import db
from local import resolver_threads

# Powertools keeps the request being served on its resolver *class*: per thread here, since the
# environments of this process serve their requests at once, each in a thread of its own.
resolver_threads.install()

# Modules copied for extra environments: the in-repo functions (a test's own handler module is
# shared: copying a test module would run its module code again).
COPIED_PACKAGES = ("functions.",)
# How long an extra environment stays warm after its call (Lambda keeps one for minutes). Long
# enough to serve a burst's next calls (50 payers polling every 250 ms under load reached an idle
# function between waves, and each wave then cold-started every copy again), short enough that no
# copy outlives the burst it served into the next test.
IDLE_S = 2.0


@dataclass
class Environment:
    function: str
    number: int  # 0 is the warm, first environment
    module: ModuleType
    attribute: str
    idle_since: float = 0.0  # an extra environment's last call ended (time.monotonic())

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
        self._idle: dict[tuple[str, str], list[Environment]] = {}  # extra environments between calls
        self._in_flight: dict[str, int] = {}
        self.peak: dict[str, int] = {}  # the most environments a function had busy at once
        self.cold_starts: dict[str, int] = {}  # extra environments started (copies of the module)

    @contextmanager
    def borrow(self, function: str, handler: str) -> Iterator[Environment]:
        """An environment of ``function`` (``handler`` is ``"module:attribute"``) for one call; the
        call runs with the environment's own database connection."""
        module_name, _, attribute = handler.partition(":")
        key = (function, handler)
        reused: Environment | None = None
        with self._guard:
            stale = self._sweep(time.monotonic())
            first = key not in self._first_busy
            if first:
                self._first_busy.add(key)
                number = 0
            elif self._idle.get(key):
                reused = self._idle[key].pop()  # the most recently used warm extra environment
                number = reused.number
            else:
                number = self._numbers[key] = self._numbers.get(key, 0) + 1
                self.cold_starts[function] = self.cold_starts.get(function, 0) + 1
            self._in_flight[function] = in_flight = self._in_flight.get(function, 0) + 1
            self.peak[function] = max(self.peak.get(function, 0), in_flight)
        self._retire(stale)
        environment = reused
        try:
            if environment is None:
                module = importlib.import_module(module_name) if first else _fresh_copy(module_name, number)
                environment = Environment(function, number, module, attribute or "lambda_handler")
            with db.function_slot(environment.slot):
                yield environment
        finally:
            now = time.monotonic()
            with self._guard:
                self._in_flight[function] -= 1
                if first:
                    self._first_busy.discard(key)
                elif environment is not None:
                    environment.idle_since = now
                    self._idle.setdefault(key, []).append(environment)
                retired = self._sweep(now)
            if not first and environment is None:  # its module failed to load
                retired.append(Environment(function, number, ModuleType(_copy_name(module_name, number)), attribute))
            self._retire(retired)

    def _sweep(self, now: float) -> list[Environment]:
        """Takes out the extra environments idle for longer than ``IDLE_S`` (under the guard)."""
        retired: list[Environment] = []
        for key, idle in list(self._idle.items()):
            keep = [e for e in idle if now - e.idle_since <= IDLE_S]
            if len(keep) < len(idle):
                retired.extend(e for e in idle if now - e.idle_since > IDLE_S)
                if keep:
                    self._idle[key] = keep
                else:
                    del self._idle[key]
        return retired

    def retire_idle(self) -> None:
        """Retires every idle extra environment at once (a test that changes settings mid-burst)."""
        with self._guard:
            retired = [e for idle in self._idle.values() for e in idle]
            self._idle.clear()
        self._retire(retired)

    @staticmethod
    def _retire(retired: list[Environment]) -> None:
        for extra in retired:
            db.release(extra.slot)
            if extra.module.__name__.endswith(f".__environment_{extra.number}__"):  # not a shared module
                sys.modules.pop(extra.module.__name__, None)


# The handler modules' compiled code by (path, mtime, size). Each extra environment still runs its
# module's code afresh (its own module state: the cold start); only the compilation from source is
# done once, as a bundle with its bytecode would have it. Without this every copy compiled its
# source again (no bytecode is written when PYTHONDONTWRITEBYTECODE is set, as in CI): 8% of the
# process's time under the 50-payer burst.
_CODE: dict[tuple[str, int, int], CodeType] = {}


def _compiled(path: str) -> CodeType:
    stat = os.stat(path)
    key = (path, stat.st_mtime_ns, stat.st_size)
    code = _CODE.get(key)
    if code is None:
        with open(path, "rb") as source:
            code = _CODE[key] = compile(source.read(), path, "exec", dont_inherit=True)
    return code


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
        exec(_compiled(original.__file__), module.__dict__)  # noqa: S102 - the module's own code
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
