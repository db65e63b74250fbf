"""Costs of moto's own machinery that AWS's services do not have, taken out.

Under a burst (50 enrollments at once, `make bench`) the whole local stack shares one process and
one interpreter lock, so CPU that moto spends per execution or per task delays every step of every
execution. Profiled (py-spy, the lock holder), two pieces of moto's own bookkeeping were about half
of it, in its Step Functions interpreter:

- **A parse of the definition per execution.** moto's execution worker parses the state machine's
  ASL with ANTLR when each execution starts (28% of the process's time). The parse tree depends on
  the definition text alone, so it is kept per definition. A definition with syntax errors is not
  kept (it raises, every time).
- **The definition's components built again per execution.** moto's preprocessor then turned the
  kept tree into the program's components for every execution (14% of the process holding the
  interpreter lock under the 50-payer burst, issue 13). The components are built once per
  definition and shared: they are declarations, set when they are built and only read while
  executions run (moto's own Parallel branches already share one state's components between
  threads). What an execution changes while it runs lives in its own ``Environment``: its input
  and output, its event history, and the retry counters, which a component keeps in the
  environment's heap under its ``heap_key``. That key is made on first use, so every component's
  key is made when the program is kept, before two executions could race to make it.
- **The whole definition's text, per execution, for error messages never raised.** moto's
  preprocessor builds each execution's components from the kept tree, and on the way it builds
  ``ValueError(f"... '{ctx.getText()}'")`` for every declaration it checks (``raise_on_missing``):
  the text of the program, of every branch and state is concatenated from the tree's tokens each
  time, raised or not (19% of the process holding the interpreter lock, 50 enrollments at once).
  A kept tree does not change, so each of its nodes carries its text, computed once when the tree
  is kept; ``getText`` answers that for those nodes and computes it as before for any other.
  The retriers' ``ValueError(f"... '{props}'")`` likewise formats every component of every
  retrier (5%): built only when the ``ErrorEquals`` it is about is missing, with the same text.
- **A boto3 client per Lambda task.** moto's Lambda task builds a new client for every invocation
  (16%: botocore copies its event hooks and builds the client class each time). One client per
  region, service and moto port serves every task; botocore clients are thread-safe, and the client
  is moto's own (its fixed fake credentials; moto ignores the state's credentials there too), so
  what a task sends is unchanged.

- **A JSONPath parse per path evaluated.** moto parses every `InputPath`, `ResultPath` and `.$`
  parameter again when a state evaluates it, and jsonpath-ng's parser builds its grammar tables
  anew each time (6%). A parsed path is an immutable expression: kept per path text.

- **moto's request routing redoing constant work per request**: the names of a response class's
  methods (``inspect.getmembers``, 4%) and the listing of moto's package directory (to tell a
  service name in the host, 3%). Both depend on code that does not change while the process
  runs: kept per class, listed once.

- **A lookup table of a service's errors built for every error answered.** moto's
  ``get_error_model`` asks a new ``ErrorLookupFactory`` for each error, so the factory's cache of
  a service's code → shape table is always empty: each ``ParameterNotFound`` built SSM's table of
  every error shape again (15% of the stack's time answering a missed ``GetParameter``, which each
  provisioner asks before it writes a student's secret). The tables are built from the service's
  model alone and only read: one per service, shared by the factories.

- **The service of a request found by trying every service's URL patterns.** moto's server tells
  the service from the request's host by matching it against each backend's URL patterns in turn,
  several hundred regular expressions (0.8-1 ms of a 2.5-3.5 ms request, under the lock every moto
  request takes). The patterns do not change while the server runs, so the answer for a host is
  kept.

- **A global lock for every backend lookup.** moto's ``BackendDict`` takes one process-wide lock,
  lists its accounts and scans its list of every service's backends (comparing each in Python) on
  every lookup, although after the first one for an account the answer is the dict's own entry.
  Under the burst the stack's threads queued on that lock (9% of its samples waited there). A
  known account's backend is answered from the dict; a new account, or any account after moto's
  reset, goes through moto's lookup as before, which registers it for the next reset (a backend
  one service's reset looks up while the reset runs is registered again afterwards: SESv2's
  reset reaches SES's).

- **A thread per task state.** moto runs each task's work in a thread of its own, started by the
  state's thread, which waits for it so that it can time the task out (``TimeoutSeconds``). None
  of the workflows' states sets a timeout (moto's default is about three years), and starting a
  thread and waking its waiter cost two hand-overs of the interpreter lock on every step's way in
  and out: under the 50-payer burst each one waited behind the stack's other threads, 0.1-0.5 s
  per step. A state without a timeout runs its work in its own thread; one with a timeout keeps
  moto's thread, so it is still timed out.

- **Flask's debug helpers on every moto request.** moto runs its Flask apps with ``debug = True``;
  Flask then builds a new class per request that reads a form body (every Query-protocol call:
  SSM, SES, IAM), 4% of the process. The apps run with ``debug`` off and exceptions still
  propagated (``PROPAGATE_EXCEPTIONS``), which is what ``debug`` set for error handling.

What the steps do, how they are retried, caught and timed, and every call they make are untouched.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from typing import Any

from antlr4.RuleContext import RuleContext
from antlr4.tree.Tree import TerminalNode
from moto import backends
from moto.core import responses as core_responses
from moto.core.base_backend import BackendDict
from moto.core.errors import ErrorLookupFactory
from moto.moto_server import threaded_moto_server, werkzeug_app
from moto.settings import moto_server_port
from moto.stepfunctions.parser.asl.component.common.comment import Comment
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.component.common.retry.backoff_rate_decl import BackoffRateDecl
from moto.stepfunctions.parser.asl.component.common.retry.interval_seconds_decl import IntervalSecondsDecl
from moto.stepfunctions.parser.asl.component.common.retry.jitter_strategy_decl import JitterStrategyDecl
from moto.stepfunctions.parser.asl.component.common.retry.max_attempts_decl import MaxAttemptsDecl
from moto.stepfunctions.parser.asl.component.common.retry.max_delay_seconds_decl import MaxDelaySecondsDecl
from moto.stepfunctions.parser.asl.component.common.retry.retrier_decl import RetrierDecl
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.parse import asl_parser
from moto.stepfunctions.parser.asl.utils import json_path

_lock = threading.Lock()
_installed = False

_original_parse = asl_parser.AmazonStateLanguageParser.parse
_trees: dict[str, tuple[Any, Any]] = {}  # definition → (program, tree)
_MAX_TREES = 64  # machines x updates in one process; a test suite creates a few dozen at most


_TEXT = "_apranova_text"  # a kept tree's node: its text, as getText would build it
_original_get_text = RuleContext.getText


def _get_text(self: Any) -> str:
    text = getattr(self, _TEXT, None)
    return _original_get_text(self) if text is None else text


def _keep_texts(node: Any) -> str:
    """Stores every rule node's text on it (bottom-up; the tree is not changed after this)."""
    if isinstance(node, TerminalNode):
        return str(node.getText())
    text = "".join(_keep_texts(child) for child in (node.children or ()))
    setattr(node, _TEXT, text)
    return text


def _components(root: Any) -> Iterator[EvalComponent]:
    """Every evaluation component reachable from ``root`` through attributes and containers."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, EvalComponent):
            yield item
            stack.extend(vars(item).values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())


def _parse(definition: str) -> tuple[Any, Any]:
    kept = _trees.get(definition)
    if kept is None:
        program, tree = _original_parse(definition)  # raises on a syntax error: nothing kept
        _keep_texts(tree)
        for component in _components(program):
            component.heap_key  # noqa: B018 - made now, not by two executions at once
        kept = (program, tree)
        with _lock:
            if len(_trees) >= _MAX_TREES:
                _trees.clear()
            _trees[definition] = kept
    return kept


_original_client_for = lambda_eval_utils.boto_client_for
_clients: dict[tuple[str, str, bool, str], Any] = {}


def _client_for(region: str, service: str, state_credentials: Any = None) -> Any:
    from moto.core.models import botocore_stubber

    key = (region, service, bool(botocore_stubber.enabled), str(moto_server_port()))
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = _original_client_for(region, service, state_credentials)
    return client


def _from_retrier_props(cls: type[RetrierDecl], props: Any) -> RetrierDecl:
    """moto 5.2.5's ``RetrierDecl.from_retrier_props``, its error message built only when raised."""
    error_equals = props.get(ErrorEqualsDecl)
    if error_equals is None:
        raise ValueError(f"Missing ErrorEquals declaration for Retrier declaration, in props '{props}'.")
    return cls(
        error_equals=error_equals,
        interval_seconds=props.get(IntervalSecondsDecl),
        max_attempts=props.get(MaxAttemptsDecl),
        backoff_rate=props.get(BackoffRateDecl),
        max_delay_seconds=props.get(MaxDelaySecondsDecl),
        jitter_strategy=props.get(JitterStrategyDecl),
        comment=props.get(Comment),
    )


_original_method_names = core_responses.method_names_from_class
_method_names: dict[type, frozenset[str]] = {}


def _method_names_from_class(clazz: Any) -> frozenset[str]:
    names = _method_names.get(clazz)
    if names is None:
        names = _method_names[clazz] = frozenset(_original_method_names(clazz))
    return names


_moto_modules = tuple(backends.list_of_moto_modules())


def _list_of_moto_modules() -> tuple[str, ...]:
    return _moto_modules


_original_backend_app = werkzeug_app.create_backend_app


def _backend_app(service: Any) -> Any:
    app = _original_backend_app(service)
    app.config["PROPAGATE_EXCEPTIONS"] = True
    app.debug = False
    return app


_error_luts: dict[Any, Any] = {}


def _error_lookup_factory_init(self: ErrorLookupFactory) -> None:
    self._error_lut_cache = _error_luts


_original_backend_for_host = werkzeug_app.DomainDispatcherApplication.get_backend_for_host
_backends_by_host: dict[str, Any] = {}


def _backend_for_host(self: werkzeug_app.DomainDispatcherApplication, host: str | None) -> Any:
    if host is None:
        return None
    if host not in _backends_by_host:
        _backends_by_host[host] = _original_backend_for_host(self, host)
    return _backends_by_host[host]


_original_backend_dict_getitem = BackendDict.__getitem__
_original_backend_dict_reset = BackendDict.reset
_KNOWN = "_apranova_known"  # the reset generation in which moto's own lookup last registered it
_generation = [0]


def _backend_dict_getitem(self: BackendDict[Any], account_id: str) -> Any:
    generation = _generation[0]
    if getattr(self, _KNOWN, None) == generation:
        try:
            return dict.__getitem__(self, account_id)
        except KeyError:  # a new account
            pass
    backend = _original_backend_dict_getitem(self, account_id)  # registers it for moto's next reset
    setattr(self, _KNOWN, generation)
    return backend


def _backend_dict_reset(cls: type[BackendDict[Any]]) -> None:
    # moto's reset clears the backends it has registered and forgets them; a backend looked up while
    # it runs (one service's reset reaches another's backend) must register again afterwards.
    try:
        _original_backend_dict_reset()
    finally:
        _generation[0] += 1


_original_evaluate_with_timeout = execute_state.ExecutionState._evaluate_with_timeout
_inline = threading.local()


class _TaskThread(threading.Thread):
    """The thread moto starts to run a task state's work while the state's own thread waits for it
    (to time it out): run in the state's thread instead when the state sets no timeout."""

    def start(self) -> None:
        if getattr(_inline, "on", False):
            self.run()
        else:
            super().start()


def _evaluate_with_timeout(self: Any, env: Any) -> None:
    timeout = self.timeout
    untimed = isinstance(timeout, TimeoutSeconds) and timeout.is_default_value()
    _inline.on = untimed
    try:
        _original_evaluate_with_timeout(self, env)
    finally:
        _inline.on = False


def install() -> None:
    """Idempotent."""
    global _installed
    with _lock:
        if _installed:
            return
        asl_parser.AmazonStateLanguageParser.parse = staticmethod(_parse)  # type: ignore[method-assign,assignment]
        RuleContext.getText = _get_text  # type: ignore[method-assign]
        RetrierDecl.from_retrier_props = classmethod(_from_retrier_props)  # type: ignore[method-assign,assignment]
        core_responses.method_names_from_class = _method_names_from_class  # type: ignore[assignment]
        backends.list_of_moto_modules = _list_of_moto_modules  # type: ignore[assignment]
        lambda_eval_utils.boto_client_for = _client_for  # type: ignore[assignment]
        werkzeug_app.create_backend_app = _backend_app  # type: ignore[assignment]
        ErrorLookupFactory.__init__ = _error_lookup_factory_init  # type: ignore[method-assign]
        werkzeug_app.DomainDispatcherApplication.get_backend_for_host = _backend_for_host  # type: ignore[method-assign]
        threaded_moto_server.create_backend_app = _backend_app  # type: ignore[assignment]
        BackendDict.__getitem__ = _backend_dict_getitem  # type: ignore[method-assign,assignment]
        BackendDict.reset = classmethod(_backend_dict_reset)  # type: ignore[method-assign,assignment]
        execute_state.Thread = _TaskThread  # type: ignore[attr-defined,misc]
        execute_state.ExecutionState._evaluate_with_timeout = _evaluate_with_timeout  # type: ignore[method-assign]
        json_path.parse = functools.lru_cache(maxsize=2048)(json_path.parse)  # type: ignore[assignment]
        result_path.parse = functools.lru_cache(maxsize=2048)(result_path.parse)  # type: ignore[assignment]
        _installed = True
