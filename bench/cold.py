"""Cold import of each Lambda entry module, each in a fresh interpreter, beside the bare start-up.

Each measured import runs in its own ``python -c`` with ``perf_counter`` around the import only, so
the number is what the module costs on top of the interpreter. The third-party modules a handler
truly needs are found by importing it once and listing what it added to ``sys.modules``; importing
exactly those (in the same order) in a fresh interpreter is the floor the handler is compared with.
Runs are interleaved (bare, handler, third-party, ...) so drift in machine load hits all alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import config
from bench.modules import third_party, top_level, unexpected_heavy
from bench.stats import median

ROOT = Path(__file__).resolve().parent.parent

_DISCOVER = """
import sys, time
_before = set(sys.modules)
_t0 = time.perf_counter()
import {module}
_t1 = time.perf_counter()
import json
print(json.dumps({{"seconds": _t1 - _t0, "added": [m for m in sys.modules if m not in _before]}}))
"""

_IMPORT = """
import sys, time
_t0 = time.perf_counter()
import {module}
_t1 = time.perf_counter()
sys.stdout.write(repr(_t1 - _t0))
"""

# The module names arrive as arguments; some in sys.modules are not importable by name (Cython's
# runtime, aliases), so failures are skipped and reported.
_IMPORT_LIST = """
import importlib, sys, time
_names = sys.argv[1:]
_failed = []
_t0 = time.perf_counter()
for _n in _names:
    try:
        importlib.import_module(_n)
    except Exception:
        _failed.append(_n)
_t1 = time.perf_counter()
import json
print(json.dumps({"seconds": _t1 - _t0, "failed": _failed}))
"""


def child_env(function: str, database_url: str | None = None) -> dict[str, str]:
    """The environment of a Lambda function: its Powertools service, fake AWS credentials, no PYTHON*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "DATABASE_URL"}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",  # noqa: S105 - a placeholder: the bench never reaches AWS
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "STAGE": "bench",
            "POWERTOOLS_SERVICE_NAME": function,
            "POWERTOOLS_METRICS_NAMESPACE": "ApraNova",
        }
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def run_python(code: str, *args: str, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run ``python -c code args`` from the repository root; (wall seconds, stdout)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}")
    return wall, done.stdout


@dataclass
class ColdResult:
    function: str
    module: str
    error: str | None = None
    handler_s: list[float] = field(default_factory=list)
    process_s: list[float] = field(default_factory=list)
    third_party_s: list[float] = field(default_factory=list)
    added_modules: int = 0
    third_party_modules: list[str] = field(default_factory=list)
    not_importable: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)

    def packages(self) -> list[str]:
        return sorted({top_level(n) for n in self.third_party_modules})

    @property
    def bare_botocore_only(self) -> bool:
        """Only the ``botocore`` package itself is loaded: Powertools' user-agent hook, under a millisecond."""
        names = self.third_party_modules
        return "botocore" in names and not any(n.startswith("botocore.") for n in names)

    @property
    def ratio(self) -> float | None:
        """The median of the per-run ratios: each handler run is paired with the third-party run right
        after it, so a slow spell on a shared machine slows both sides of a pair, not one median."""
        if not self.handler_s or not self.third_party_s:
            return None
        return median([h / t for h, t in zip(self.handler_s, self.third_party_s, strict=True)])

    def as_json(self) -> dict[str, Any]:
        ms = lambda values: [round(v * 1000, 3) for v in values]  # noqa: E731
        return {
            "module": self.module,
            "error": self.error,
            "handler_import_ms": {"median": _median_ms(self.handler_s), "runs": ms(self.handler_s)},
            "handler_process_wall_ms": {"median": _median_ms(self.process_s), "runs": ms(self.process_s)},
            "third_party_import_ms": {"median": _median_ms(self.third_party_s), "runs": ms(self.third_party_s)},
            "ratio": None if self.ratio is None else round(self.ratio, 3),  # median of per-run ratios
            "ratio_target_max": config.IMPORT_RATIO_MAX,
            "pass": self.passed,
            "modules_added": self.added_modules,
            "third_party_modules": len(self.third_party_modules),
            "third_party_packages": self.packages(),
            "botocore_bare_package_only": self.bare_botocore_only,
            "not_importable_by_name": self.not_importable,
            "flagged_packages": self.flagged,
        }

    @property
    def passed(self) -> bool:
        within = self.ratio is not None and self.ratio <= config.IMPORT_RATIO_MAX
        return self.error is None and within and not self.flagged


def _median_ms(values: list[float]) -> float | None:
    return round(median(values) * 1000, 3) if values else None


def entry_functions() -> list[str]:
    """Every function of the route table, plus every other function folder with a Lambda handler."""
    from apranova import routes

    found = set(routes.functions())
    found |= {p.parent.name for p in (ROOT / "functions").glob("*/handler.py")}
    return sorted(found)


def measure(functions: list[str], runs: int = config.IMPORT_RUNS) -> tuple[list[float], list[ColdResult]]:
    """(bare start-up wall seconds per run, one result per function)."""
    from apranova import routes

    results = [ColdResult(f, routes.handler_module(f)) for f in functions]
    # Discovery, which also warms the bytecode and file caches for the timed runs.
    for result in results:
        try:
            _, out = run_python(_DISCOVER.format(module=result.module), env=child_env(result.function))
        except RuntimeError as error:
            result.error = str(error)
            continue
        added = json.loads(out)["added"]
        result.added_modules = len(added)
        result.third_party_modules = third_party(added, config.OWN_PACKAGES)
        allowed = config.HEAVY_ALLOWED.get(result.function, frozenset())
        result.flagged = unexpected_heavy(added, config.HEAVY_PACKAGES, allowed)
        _, out = run_python(_IMPORT_LIST, *result.third_party_modules, env=child_env(result.function))
        # Cython's runtime pseudo-modules and aliases: in sys.modules, but nothing one can import.
        result.not_importable = json.loads(out)["failed"]
        result.third_party_modules = [n for n in result.third_party_modules if n not in result.not_importable]

    bare: list[float] = []
    run_python("pass")
    for _ in range(runs):
        bare.append(run_python("pass")[0])
        for result in results:
            if result.error:
                continue
            env = child_env(result.function)
            wall, out = run_python(_IMPORT.format(module=result.module), env=env)
            result.handler_s.append(float(out))
            result.process_s.append(wall)
            _, out = run_python(_IMPORT_LIST, *result.third_party_modules, env=env)
            result.third_party_s.append(json.loads(out)["seconds"])
    return bare, results
