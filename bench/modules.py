"""Which modules a handler pulls in: stdlib, ours, or third-party (pure helpers)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable

# Entries a Cython extension puts in sys.modules for its runtime: no code of their own to import.
_PSEUDO = re.compile(r"^(cython_runtime|_cython_\d+_\d+(_\d+)*)$")


def top_level(name: str) -> str:
    return name.partition(".")[0]


def is_stdlib(name: str) -> bool:
    top = top_level(name)
    # _sysconfigdata_* is the interpreter's build configuration, loaded by sysconfig.
    return top in sys.stdlib_module_names or top in sys.builtin_module_names or top.startswith("_sysconfigdata_")


def third_party(names: Iterable[str], own: Iterable[str]) -> list[str]:
    """The names that are neither stdlib nor ours, in the order given (the order they were imported)."""
    own = frozenset(own)
    return [n for n in names if not is_stdlib(n) and top_level(n) not in own and not _PSEUDO.match(n)]


def unexpected_heavy(names: Iterable[str], heavy: Iterable[str], allowed: Iterable[str] = ()) -> list[str]:
    """The heavy packages among ``names`` that are not allowed.

    ``botocore`` counts only when something under it is loaded: the bare package is what Powertools
    imports to register its user agent, and costs under a millisecond.
    """
    names = list(names)
    loaded = {top_level(n) for n in names}
    botocore_used = any(n.startswith("botocore.") for n in names)
    found = []
    for package in heavy:
        if package in allowed or package not in loaded:
            continue
        if package == "botocore" and not botocore_used:
            continue
        found.append(package)
    return found
