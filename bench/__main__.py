"""`make bench`: ``python -m bench [--quick]``. Prints the table and writes bench/results.json.

A FAIL against a target is reported, not raised: the exit status is non-zero only when the bench
itself could not run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

# Nothing here may reach real AWS; set before any handler (and so Powertools) is imported.
for _key, _value in {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "STAGE": "bench",
    "POWERTOOLS_SERVICE_NAME": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "ApraNova",
}.items():
    os.environ.setdefault(_key, _value)

from bench import cold, config, identity, memory, report, warm, webhook  # noqa: E402
from bench.sqlcount import StatementCounter  # noqa: E402


def _fmt(value: float | None, digits: int = 1) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="3 import runs, 10 warm-up + 100 timed calls (webhook: 5 + 50)"
    )
    parser.add_argument("--output", type=Path, default=report.RESULTS, help="where to write the results JSON")
    args = parser.parse_args(argv)
    runs, warmup, timed, serve = (
        (3, 10, 100, 50)
        if args.quick
        else (config.IMPORT_RUNS, config.WARMUP_CALLS, config.TIMED_CALLS, config.MEMORY_REQUESTS)
    )
    hooks = (5, 50) if args.quick else (config.WEBHOOK_WARMUP_CALLS, config.WEBHOOK_TIMED_CALLS)
    # Powertools warns once when a request published no metric: true, and noise here.
    warnings.filterwarnings("ignore", message="No application metrics to publish")

    started = time.perf_counter()
    commit = report.git_commit()
    results: dict[str, Any] = {
        "timestamp_utc": report.timestamp(),
        "git": commit,
        "machine": report.machine(),
        "python": report.python(),
        "parameters": {
            "import_runs": runs,
            "warmup_calls": warmup,
            "timed_calls": timed,
            "memory_requests": serve,
            "webhook_warmup_calls": hooks[0],
            "webhook_timed_calls": hooks[1],
        },
        "targets": {
            "import_ratio_max": config.IMPORT_RATIO_MAX,
            "peak_rss_max_mib": config.PEAK_RSS_MAX_MIB,
            "public_list_p95_ms": config.PUBLIC_LIST_P95_MS,
            "public_list_max_statements": config.PUBLIC_LIST_STATEMENTS,
            "student_get_p95_ms": config.STUDENT_GET_P95_MS,
            "student_get_max_statements": config.STUDENT_GET_STATEMENTS,
            "webhook_p95_ms": config.WEBHOOK_P95_MS,
            "unexpected_packages": list(config.HEAVY_PACKAGES),
        },
    }
    m, p = results["machine"], results["python"]
    where = f"commit {commit['commit'][:10]}{' (dirty)' if commit['dirty'] else ''}" if commit else "no git"
    print(
        f"ApraNova bench  {results['timestamp_utc']}  {where}  Python {p['version']}  "
        f"{m['system']} {m['arch']}, {m['cpu_count']} CPUs, load {m['load_average_1m_at_start']}"
    )

    # 1. Cold import.
    functions = cold.entry_functions()
    bare, colds = cold.measure(functions, runs)
    bare_ms = cold.median(bare) * 1000
    results["cold_import"] = {
        "bare_startup_wall_ms": {"median": round(bare_ms, 3), "runs": [round(b * 1000, 3) for b in bare]},
        "functions": {c.function: c.as_json() for c in colds},
    }
    rows = []
    for c in colds:
        data = c.as_json()
        process = data["handler_process_wall_ms"]["median"]
        rows.append(
            [
                c.function,
                _fmt(data["handler_import_ms"]["median"]),
                _fmt(data["third_party_import_ms"]["median"]),
                _fmt(c.ratio, 2),
                f"<= {config.IMPORT_RATIO_MAX}",
                report.verdict(c.passed),
                _fmt(process),
                None if process is None else f"{process / bare_ms:.1f}x",
                data["third_party_modules"],
                ", ".join(c.flagged) or (f"error: {c.error}" if c.error else "none"),
            ]
        )
    print(f"\nCOLD IMPORT  median of {runs} fresh interpreters; bare start-up (python -c pass) {bare_ms:.1f} ms wall")
    print(
        report.table(
            [
                "function",
                "handler ms",
                "3rd-party ms",
                "ratio",
                "target",
                "result",
                "process ms",
                "x bare",
                "3p modules",
                "unexpected packages",
            ],
            rows,
        )
    )
    for c in colds:
        packages = ", ".join(
            f"{name} (bare package: Powertools' user-agent hook)"
            if name == "botocore" and c.bare_botocore_only
            else name
            for name in c.packages()
        )
        print(f"  {c.function}: third-party packages pulled in: {packages or 'none'}")

    # 2 and 3 need the database.
    reason = warm.missing_pieces()
    if reason:
        print(f"\nMEMORY / WARM LATENCY  skipped: {reason}")
        results["memory"] = results["warm_latency"] = results["webhook"] = {"skipped": reason}
    else:
        with warm.bench_database() as url, identity.bench_student(url) as student:
            counter = _database_sections(
                results, url, functions, warmup, timed, serve, identity.personalise(config.ROUTES, student)
            )
            # Last: it sets the payments settings for its run (and puts them back).
            _webhook_section(results, student.moto_url, url, counter, *hooks)

    results["duration_s"] = round(time.perf_counter() - started, 1)
    path = report.write_results(results, args.output)
    shown = path.relative_to(report.ROOT) if path.is_relative_to(report.ROOT) else path
    print(f"\nwrote {shown} in {results['duration_s']} s")
    return 0


def _database_sections(
    results: dict[str, Any],
    url: str,
    functions: list[str],
    warmup: int,
    timed: int,
    serve: int,
    bench_routes: tuple[config.BenchRoute, ...],
) -> StatementCounter:
    from apranova import routes

    by_function: dict[str, list[config.BenchRoute]] = {}
    for route in bench_routes:
        found, _ = routes.match(route.method, route.path)
        if found is not None:
            by_function.setdefault(found.function, []).append(route)

    bare_mib = memory.bare_peak_mib()
    mems = [memory.measure(f, by_function.get(f, []), url, serve) for f in functions]
    results["memory"] = {
        "bare_interpreter_peak_mib": round(bare_mib, 1),
        "functions": {mem.function: mem.as_json() for mem in mems},
    }
    print(f"\nMEMORY  peak resident set (VmHWM) after import + warm requests; bare interpreter {bare_mib:.1f} MiB")
    rows = [
        [
            mem.function,
            mem.requests or "import only",
            _fmt(mem.peak_mib),
            f"<= {config.PEAK_RSS_MAX_MIB:g}",
            report.verdict(mem.passed),
            mem.error or ", ".join(f"{k}: {v}" for k, v in sorted(mem.statuses.items())) or "-",
        ]
        for mem in mems
    ]
    print(report.table(["function", "requests", "peak MiB", "target", "result", "statuses"], rows))

    counter = StatementCounter()
    warm.use_database(url, counter)
    lats = [warm.measure(route, counter, warmup, timed) for route in bench_routes]
    results["warm_latency"] = {lat.route.name: lat.as_json() for lat in lats}
    benched = {(r.method, r.path) for r in config.ROUTES} | {(webhook.METHOD, webhook.PATH)}
    missing = [r.key for r in routes.ROUTES if not r.local_only and (r.method, r.path) not in benched]
    results["warm_latency_routes_not_benched"] = missing
    print(f"\nWARM LATENCY  in-process against PostgreSQL; {warmup} warm-up + {timed} timed calls per route")
    rows = []
    for lat in lats:
        ms, st = lat.latency_ms, lat.statements
        rows.append(
            [
                lat.route.name,
                f"{lat.route.method} {lat.route.path}",
                _fmt(ms.get("p50"), 2),
                _fmt(ms.get("p95"), 2),
                _fmt(ms.get("p99"), 2),
                None if lat.route.p95_ms is None else f"<= {lat.route.p95_ms:g}",
                st.get("max"),
                None if lat.route.max_statements is None else f"<= {lat.route.max_statements}",
                report.verdict(lat.passed),
                lat.error or ", ".join(f"{k}: {v}" for k, v in sorted(lat.statuses.items())),
            ]
        )
    print(
        report.table(
            ["route", "request", "p50 ms", "p95 ms", "p99 ms", "target", "SQL/req", "target", "result", "statuses"],
            rows,
        )
    )
    if missing:
        print(f"  routes with no bench entry (add them to bench/config.py ROUTES): {', '.join(missing)}")
    return counter


def _webhook_section(
    results: dict[str, Any], moto_url: str, url: str, counter: StatementCounter, warmup: int, timed: int
) -> None:
    started = time.perf_counter()
    rows = webhook.measure(moto_url, url, counter, warmup, timed)
    results["webhook"] = {
        "method": webhook.METHOD,
        "path": webhook.PATH,
        "duration_s": round(time.perf_counter() - started, 1),
        "rows": {row.name: row.as_json() for row in rows},
    }
    print(
        f"\nWEBHOOK  {webhook.METHOD} {webhook.PATH} in-process, PostgreSQL + moto (SSM, Step Functions) on loopback; "
        f"{warmup} warm-up + {timed} timed; each new event is a new PENDING payment"
    )
    table_rows = [
        [
            row.name,
            _fmt(row.latency_ms.get("p50"), 2),
            _fmt(row.latency_ms.get("p95"), 2),
            _fmt(row.latency_ms.get("p99"), 2),
            None if row.p95_ms is None else f"<= {row.p95_ms:g}",
            row.statements.get("max"),
            row.requests,
            row.failures,
            report.verdict(row.passed),
            row.error or ", ".join(f"{k}: {v}" for k, v in sorted(row.outcomes.items())),
        ]
        for row in rows
    ]
    print(
        report.table(
            ["request", "p50 ms", "p95 ms", "p99 ms", "target", "SQL/req", "n", "failed", "result", "outcomes"],
            table_rows,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
