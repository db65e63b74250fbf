"""Peak resident memory of a warm function: a fresh interpreter imports the handler and serves requests."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from apranova import routes as route_table
from bench import config
from bench.cold import child_env, run_python
from bench.config import BenchRoute

# The peak is read from /proc/self/status (VmHWM), not ru_maxrss: on Linux ru_maxrss carries the
# parent's high-water mark across fork/exec, so a child of a big parent would report the parent.
_PEAK = """
import resource, sys
def _peak_kib():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]), "VmHWM"
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (maxrss // 1024 if sys.platform == "darwin" else maxrss), "ru_maxrss"
"""

_SERVE = (
    _PEAK
    + """
import json
_spec = json.loads(sys.argv[1])
import importlib
handler = importlib.import_module(_spec["module"]).lambda_handler
from local.events import LambdaContext, http_api_event
statuses = {}
for i in range(_spec["requests"] if _spec["routes"] else 0):
    r = _spec["routes"][i % len(_spec["routes"])]
    event = http_api_event(r["method"], r["path"], claims=r["claims"], query=r["query"] or None, body=r["body"])
    status = str(handler(event, LambdaContext(_spec["function"]))["statusCode"])
    statuses[status] = statuses.get(status, 0) + 1
_kib, _source = _peak_kib()
print(json.dumps({"peak_kib": _kib, "source": _source, "statuses": statuses}))
"""
)

_BARE = _PEAK + "print(*_peak_kib())"


@dataclass
class MemoryResult:
    function: str
    requests: int = 0
    peak_mib: float | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    measured_with: str | None = None  # VmHWM (Linux) or ru_maxrss
    error: str | None = None

    @property
    def passed(self) -> bool:
        ok = set(self.statuses) <= {"200"}
        return self.error is None and ok and self.peak_mib is not None and self.peak_mib <= config.PEAK_RSS_MAX_MIB

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("function")
        data["target_max_mib"] = config.PEAK_RSS_MAX_MIB
        data["pass"] = self.passed
        return data


def bare_peak_mib() -> float:
    return int(run_python(_BARE)[1].split()[0]) / 1024


def measure(
    function: str, routes: list[BenchRoute], database_url: str, requests: int = config.MEMORY_REQUESTS
) -> MemoryResult:
    """``routes`` are the bench routes this function serves; with none, the import alone is measured."""
    spec = {
        "function": function,
        "module": route_table.handler_module(function),
        "requests": requests,
        "routes": [
            {"method": r.method, "path": r.path, "claims": r.claims, "query": r.query, "body": r.body} for r in routes
        ],
    }
    result = MemoryResult(function, requests=requests if routes else 0)
    try:
        _, out = run_python(_SERVE, json.dumps(spec), env=child_env(function, database_url))
    except RuntimeError as error:
        result.error = str(error)
        return result
    data = json.loads(out)
    result.peak_mib = round(data["peak_kib"] / 1024, 1)
    result.measured_with = data["source"]
    result.statuses = data["statuses"]
    return result
