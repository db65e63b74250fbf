"""`make bench`: ``python -m bench [--quick] [--only SECTION ...]``. Prints the table and writes
bench/results.json.

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

# The caller's environment, before the bench's settings below: what the local stack of the
# enrollment section starts from.
CALLER_ENV = dict(os.environ)

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

from bench import cold, config, enrollment, gdpr, identity, memory, report, scale, warm, webhook  # noqa: E402
from bench.sqlcount import StatementCounter  # noqa: E402


def _fmt(value: float | None, digits: int = 1) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


SECTIONS = ("cold", "memory", "warm", "webhook", "scale", "gdpr", "enrollment")
DATABASE_SECTIONS = ("memory", "warm", "webhook")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 import runs, 10 warm-up + 100 timed calls (webhook: 5 + 50; enrollment: 2 journeys per track; "
        "gdpr: 200,000 audit rows, 2 exports)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        metavar="SECTION",
        help=f"run only this section (repeatable; one of {', '.join(SECTIONS)}); "
        "the results file then holds only the sections run",
    )
    parser.add_argument("--output", type=Path, default=report.RESULTS, help="where to write the results JSON")
    args = parser.parse_args(argv)
    selected = [s for s in SECTIONS if s in (args.only or SECTIONS)]
    runs, warmup, timed, serve = (
        (3, 10, 100, 50)
        if args.quick
        else (config.IMPORT_RUNS, config.WARMUP_CALLS, config.TIMED_CALLS, config.MEMORY_REQUESTS)
    )
    hooks = (5, 50) if args.quick else (config.WEBHOOK_WARMUP_CALLS, config.WEBHOOK_TIMED_CALLS)
    journeys = config.ENROLLMENT_QUICK_JOURNEYS if args.quick else config.ENROLLMENT_JOURNEYS
    # Powertools warns once when a request published no metric: true, and noise here.
    warnings.filterwarnings("ignore", message="No application metrics to publish")

    started = time.perf_counter()
    commit = report.git_commit()
    results: dict[str, Any] = {
        "timestamp_utc": report.timestamp(),
        "git": commit,
        "machine": report.machine(),
        "python": report.python(),
        "sections": selected,
        "parameters": {
            "import_runs": runs,
            "warmup_calls": warmup,
            "timed_calls": timed,
            "memory_requests": serve,
            "webhook_warmup_calls": hooks[0],
            "webhook_timed_calls": hooks[1],
            "enrollment_journeys_per_track": journeys,
            "scale_students": list(config.SCALE_STUDENTS),
            "gdpr_audit_rows": config.GDPR_QUICK_AUDIT_ROWS if args.quick else config.GDPR_AUDIT_ROWS,
        },
        "targets": {
            "import_ratio_max": config.IMPORT_RATIO_MAX,
            "peak_rss_max_mib": config.PEAK_RSS_MAX_MIB,
            "public_list_p95_ms": config.PUBLIC_LIST_P95_MS,
            "public_list_max_statements": config.PUBLIC_LIST_STATEMENTS,
            "student_get_p95_ms": config.STUDENT_GET_P95_MS,
            "student_get_max_statements": config.STUDENT_GET_STATEMENTS,
            "webhook_p95_ms": config.WEBHOOK_P95_MS,
            "enrollment_p95_s": config.ENROLLMENT_P95_S,
            "scale_p95_ratio_max": config.SCALE_FLAT_RATIO,
            "unexpected_packages": list(config.HEAVY_PACKAGES),
            "gdpr_audit_list_p95_ms": config.GDPR_AUDIT_P95_MS,
            "gdpr_audit_list_max_statements": config.GDPR_AUDIT_STATEMENTS,
            "gdpr_sweep_longest_batch_ms": config.GDPR_SWEEP_BATCH_MAX_MS,
            "gdpr_sweep_run_s": config.GDPR_SWEEP_RUN_MAX_S,
            "gdpr_export_p50_s": config.GDPR_EXPORT_P50_S,
        },
    }
    m, p = results["machine"], results["python"]
    where = f"commit {commit['commit'][:10]}{' (dirty)' if commit['dirty'] else ''}" if commit else "no git"
    print(
        f"ApraNova bench  {results['timestamp_utc']}  {where}  Python {p['version']}  "
        f"{m['system']} {m['arch']}, {m['cpu_count']} CPUs, load {m['load_average_1m_at_start']}"
    )

    functions = cold.entry_functions()
    if "cold" in selected:
        _cold_section(results, functions, runs)

    # Memory, warm latency and the webhook need the bench database.
    database_sections = [s for s in selected if s in DATABASE_SECTIONS]
    reason = warm.missing_pieces() if database_sections else None
    if reason:
        print(f"\nMEMORY / WARM LATENCY / WEBHOOK  skipped: {reason}")
        for section in database_sections:
            results[_RESULT_KEYS[section]] = {"skipped": reason}
    elif database_sections:
        with warm.bench_database() as url, identity.bench_student(url) as student:
            counter = _database_sections(
                results,
                url,
                functions,
                warmup,
                timed,
                serve,
                identity.personalise(config.ROUTES, student),
                database_sections,
            )
            if "webhook" in database_sections:
                # Last: it sets the payments settings for its run (and puts them back).
                _webhook_section(results, student.moto_url, url, counter, *hooks)

    if "scale" in selected:
        # A database of its own, grown to 100,000 students (bench/scale.py).
        reason = warm.missing_pieces()
        results["scale"] = {"skipped": reason} if reason else scale.run(warmup, timed)
        if reason:
            print(f"\nSCALE  skipped: {reason}")

    if "gdpr" in selected:
        # A database of its own with a large audit trail, and moto for the export (bench/gdpr.py).
        reason = warm.missing_pieces()
        results["gdpr"] = {"skipped": reason} if reason else gdpr.run(warmup, timed, quick=args.quick)
        if reason:
            print(f"\nGDPR  skipped: {reason}")

    if "enrollment" in selected:
        # Its own local stack, process and database: after the in-process sections, so neither
        # competes with the other for the two cores.
        _enrollment_section(results, journeys)

    results["duration_s"] = round(time.perf_counter() - started, 1)
    path = report.write_results(results, args.output)
    shown = path.relative_to(report.ROOT) if path.is_relative_to(report.ROOT) else path
    print(f"\nwrote {shown} in {results['duration_s']} s")
    return 0


_RESULT_KEYS = {"memory": "memory", "warm": "warm_latency", "webhook": "webhook"}


def _cold_section(results: dict[str, Any], functions: list[str], runs: int) -> None:
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


def _database_sections(
    results: dict[str, Any],
    url: str,
    functions: list[str],
    warmup: int,
    timed: int,
    serve: int,
    bench_routes: tuple[config.BenchRoute, ...],
    sections: list[str],
) -> StatementCounter:
    """Memory and warm latency, as selected; the counting connection either way (the webhook's)."""
    from apranova import routes

    by_function: dict[str, list[config.BenchRoute]] = {}
    for route in bench_routes:
        found, _ = routes.match(route.method, route.path)
        if found is not None:
            by_function.setdefault(found.function, []).append(route)

    if "memory" in sections:
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
    if "warm" in sections:
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


def _enrollment_section(results: dict[str, Any], journeys: int) -> None:
    run = enrollment.measure(CALLER_ENV, journeys)
    results["enrollment"] = run.as_json()
    load = " / ".join("-" if value is None else f"{value[0]:.2f}" for value in (run.load_start, run.load_end))
    started = "-" if run.stack_start_s is None else f"{run.stack_start_s:.1f} s"
    print(
        f"\nENROLLMENT  webhook → enrolled with tools, local stack (python -m local.stack) over HTTP; "
        f"{journeys} new students per track; clock from the emulator's pay control until GET /api/auth/user/ "
        f"(every {config.ENROLLMENT_POLL_S * 1000:g} ms) shows ENROLLED + tools_provisioned\n"
        f"  stack start {started}; section {run.duration_s:.1f} s; load average (1 min) at start / end: {load}"
    )
    rows = []
    for track in run.tracks:
        enrolled, answered = track.enrolled_s, track.webhook_s
        rows.append(
            [
                track.track,
                _fmt(enrolled.get("p50"), 2),
                _fmt(enrolled.get("p95"), 2),
                _fmt(enrolled.get("max"), 2),
                f"<= {track.target_p95_s:g}",
                _fmt(answered.get("p50"), 2),
                _fmt(answered.get("max"), 2),
                len(track.journeys),
                track.failures,
                report.verdict(track.passed),
                track.error or ", ".join(f"{k}: {v}" for k, v in sorted(track.outcomes().items())),
            ]
        )
    print(
        report.table(
            [
                "track",
                "p50 s",
                "p95 s",
                "max s",
                "target",
                "webhook p50 s",
                "webhook max s",
                "n",
                "failed",
                "result",
                "outcomes",
            ],
            rows,
        )
    )
    if run.error:
        print(f"  the section stopped early: {run.error}")
    _concurrent_enrollment_section(results)


def _concurrent_enrollment_section(results: dict[str, Any]) -> None:
    """Issue 13's bar: 50 payers at once (half each track), payment → enrolled with tools as the
    server recorded it, p95 <= 5 s, 0 failures."""
    run = enrollment.measure_concurrent(CALLER_ENV)
    results["enrollment_concurrent"] = run.as_json()
    server, seen, answered, cpu = run.server_s, run.enrolled_s, run.webhook_s, run.cpu_per_enrollment_s
    load = " / ".join("-" if value is None else f"{value[0]:.2f}" for value in (run.load_start, run.load_end))
    print(
        f"\nENROLLMENT UNDER LOAD  {run.payers} new students (half each track) pay at the same moment; "
        f"server: from each pay control until users.provisioned_at (the target's measure); seen: until its "
        f"polls (every {run.poll_interval_s:g} s, as the web app's return page) show it enrolled with tools; "
        f"section {run.duration_s:.1f} s; load average (1 min) at start / end: {load}"
    )
    print(
        report.table(
            ["payers", "server p50 s", "server p95 s", "server max s", "target", "seen p50 s", "seen p95 s",
             "webhook max s", "CPU/enrolment s (stack + workers)", "failed", "result", "outcomes"],
            [[
                run.payers, _fmt(server.get("p50"), 2), _fmt(server.get("p95"), 2), _fmt(server.get("max"), 2),
                f"<= {run.target_p95_s:g}", _fmt(seen.get("p50"), 2), _fmt(seen.get("p95"), 2),
                _fmt(answered.get("max"), 2),
                f"{cpu['stack']:.2f} + {cpu['workers']:.2f}" if cpu else None,
                run.failures, report.verdict(run.passed),
                run.error or ", ".join(f"{k}: {v}" for k, v in sorted(run.outcomes().items())),
            ]],
        )
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
