"""``make dev``: the whole system on this machine, with no AWS account and no internet (docs/principles.md §9).

Starts (or finds) PostgreSQL, migrates and seeds it, puts a PgBouncer in front of it for the
functions (as RDS Proxy is in AWS: transaction pooling, startup ``options`` refused; migrations and
the students' database connect directly), starts moto in-process with Step Functions
execution on and Lambda invocations dispatched to the in-repo handlers, bootstraps what the app
expects in AWS, and serves the API on ``127.0.0.1:${PORT:-3000}``. Writes ``<state dir>/stack.json``
(the state dir is ``.local/`` at the repo root, ``LOCAL_STATE_DIR`` overrides) and prints it.
Ctrl-C (or SIGTERM) stops everything it started and saves moto's state for the next start.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict
from werkzeug.serving import WSGIRequestHandler

from apranova import cors

ROOT = Path(__file__).resolve().parent.parent
DEV_DATABASE = "apranova_dev"
# The export worker (functions/compliance/export/worker.py): invoked by the compliance API, not routed.
EXPORT_WORKER = "apranova-compliance-export"

log = logging.getLogger("local")  # not under "apranova": that is the functions' Powertools logger


def state_dir() -> Path:
    return Path(os.environ.get("LOCAL_STATE_DIR") or ROOT / ".local").resolve()


def _environment() -> None:
    """What the functions read in AWS, pointed at the local stack; nothing here is a secret."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "STAGE": "local",
        "POWERTOOLS_SERVICE_NAME": "apranova",
        "POWERTOOLS_TRACE_DISABLED": "true",
        # EMF metrics would flood the console; CloudWatch is not here to read them.
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }.items():
        os.environ.setdefault(key, value)
    os.environ.pop("AWS_PROFILE", None)


class _RequestLog(WSGIRequestHandler):
    """One short line per API request, apart from moto's own request log (which is silenced)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.info("%s %s → %s", self.command, self.path, code)

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.warning(format, *args)


def _database(state: Path) -> str:
    from local.postgres import find_server

    if os.environ.get("DATABASE_URL"):
        return _as_url(os.environ["DATABASE_URL"])
    server = find_server(state / "postgres")
    return _as_url(server.create_database(DEV_DATABASE))


def _as_url(conninfo: str) -> str:
    """``key=value`` connection strings as a ``postgresql://`` URL (what stack.json promises)."""
    if "://" in conninfo:
        return conninfo
    params = conninfo_to_dict(conninfo)
    user = quote(str(params.pop("user", "")), safe="")
    password = params.pop("password", None)
    host = str(params.pop("host", ""))
    port = params.pop("port", None)
    dbname = quote(str(params.pop("dbname", "")), safe="")
    if host.startswith("/"):  # a Unix socket directory (and its port) go in the query
        params["host"], host = host, ""
        if port:
            params["port"], port = port, None
    auth = f"{user}:{quote(str(password), safe='')}@" if password else (f"{user}@" if user else "")
    query = f"?{urlencode(params)}" if params else ""
    return f"postgresql://{auth}{host}{':' + str(port) if port and host else ''}/{dbname}{query}"


def _migrate_and_seed(url: str) -> None:
    from functions.migrate.maintenance import close_maintenance_databases
    from functions.migrate.runner import migrate
    from functions.migrate.seed import seed_database

    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        seed_database(conn)
        close_maintenance_databases(conn)  # students sign in to this server too (as in AWS)


def _user_rows(url: str, dev_users: dict[str, dict[str, str]]) -> None:
    """The dev users' ``users`` rows (id = Cognito sub), added once and never overwritten."""
    with psycopg.connect(url, autocommit=True) as conn:
        for user in dev_users.values():
            conn.execute(
                "INSERT INTO users (id, email, name, role, track_id, email_verified)"
                " VALUES (%s, %s, %s, %s, (SELECT id FROM tracks WHERE code = %s), true)"
                " ON CONFLICT DO NOTHING",
                (user["sub"], user["email"], user["name"], user["role"], user["track"] or None),
            )


def _banner(info: dict[str, Any]) -> str:
    users = "\n".join(
        f"    {key:<12} {user['email']:<28} {user['password']}" for key, user in info["dev_users"].items()
    )
    return (
        "\nApraNova local stack is up\n"
        + (f"  Web app    {info['web_url']}  (its /api is the API)\n" if info.get("web_url") else "")
        + f"  API        {info['api_url']}\n"
        f"  API docs   {info['api_url']}/api/docs/\n"
        f"  Mailbox    {info['api_url']}/_local/mailbox\n"
        f"  Stripe     {info['stripe_url']}  (pay page: {info['stripe_url']}/pay/<session id>)\n"
        f"  GitHub     {info['github_url']}  (repositories: POST {info['github_url']}/_test/repos)\n"
        f"  moto       {info['moto_url']}\n"
        f"  Database   {info['database_url']}\n"
        f"  Pooler     {info['pooler_url']}  (PgBouncer: the functions connect through it)\n"
        f"  Workspaces {info['workspace_url']}  (sign-in, then the proxy {info['workspace_proxy_url']})\n"
        f"  Cognito    pool {info['cognito']['user_pool_id']}  client {info['cognito']['client_id']}\n"
        f"  Dev users\n{users}\n"
        f"  (also in {info['_file']})  Ctrl-C stops everything.\n"
    )


STRIPE_STATE = "stripe-state.pickle"


SSM_PREFIX = "/apranova/local"


def _students_database(app_url: str) -> str:
    """The students' database beside the application's (each DP student gets a role and schema in it)."""
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"{conninfo_to_dict(app_url)['dbname']}_students"
    with psycopg.connect(app_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return _as_url(make_conninfo(app_url, dbname=name))


def _start_tools(state: Path, moto_url: str, database_url: str) -> list[Any]:
    """The students' database and the DP/FSD tools (emulated or real, see docs/decisions.md), with
    their settings where the step functions read them (environment and moto's SSM)."""
    from psycopg.conninfo import conninfo_to_dict

    from functions.provision.tools import student_database
    from local import moto_stack
    from local.tools import jupyterhub, prefect, superset, workspace

    students_url = _students_database(database_url)
    students = conninfo_to_dict(students_url)
    os.environ.update(
        {
            "SSM_PREFIX": SSM_PREFIX,
            "STUDENTS_DB_ADMIN_URL": students_url,
            "STUDENTS_DB_NAME": str(students["dbname"]),
            "STUDENTS_DB_HOST": str(students.get("host") or "127.0.0.1"),
            "STUDENTS_DB_PORT": str(students.get("port") or 5432),
            # The local PostgreSQL has no TLS; RDS in AWS has (the default there: require).
            "STUDENTS_DB_SSLMODE": "prefer",
            # Empty databases the watchdog keeps ready for DP enrollments (as deployed).
            "STUDENTS_DB_SPARE_DATABASES": os.environ.get("STUDENTS_DB_SPARE_DATABASES")
            or str(student_database.SPARE_DATABASES),
        }
    )
    ssm = moto_stack.client("ssm", moto_url)
    handles: list[Any] = []
    superset_handle = superset.start(state)
    handles.append(superset_handle)
    superset.bootstrap_superset(ssm, SSM_PREFIX, superset_handle)
    hub = jupyterhub.start(state)
    handles.append(hub)
    jupyterhub.bootstrap_jupyterhub(ssm, SSM_PREFIX, hub)
    flows = prefect.start(state)
    handles.append(flows)
    prefect.bootstrap_prefect(ssm, SSM_PREFIX, flows)
    os.environ.update(workspace.bootstrap_workspace(moto_url, SSM_PREFIX))
    return handles


def _start_workspace_door(state: Path, moto_url: str, api_url: str, jwt_check: Any) -> Any:
    """The front door, the workspace proxy and a stand-in per running workspace (local/workspace_door.py);
    the workspace links point at the door from now on (never a task's private IP)."""
    from local import moto_stack, workspace_door

    door = workspace_door.start(
        state,
        api_url=api_url,
        ecs=moto_stack.client("ecs", moto_url),
        cluster=os.environ["WORKSPACE_CLUSTER"],
        jwt_check=jwt_check,
        region=moto_stack.REGION,
        port=int(os.environ.get("WORKSPACE_PORT") or 0) or None,
    )
    os.environ["WORKSPACE_URL_TEMPLATE"] = f"{door.url}/"
    return door


def _install_workflows(state: Path, moto_url: str) -> None:
    """The state machines CDK synthesizes (cached per source hash), their steps run in-process."""
    from local import workflows

    log.info("installing the workflows (after a change to them, the CDK app is synthesized: about 20 s)")
    arns = workflows.install(moto_url, workflows.cached())
    os.environ["ENROLLMENT_STATE_MACHINE_ARN"] = arns["enrollment"]
    os.environ["DEPROVISION_STATE_MACHINE_ARN"] = arns["deprovision"]


def _start_stripe(state: Path, api_url: str, moto_url: str) -> tuple[Any, str]:
    """The Stripe emulator, delivering signed events to the API's webhook route, and the payments
    settings pointing at it (the secrets themselves are in moto's SSM, as in AWS)."""
    from functions.payments.webhook_service import HANDLED_EVENTS
    from local import moto_stack
    from local.keepalive import make_server
    from local.stripe_emulator import StripeEmulator

    payments = moto_stack.bootstrap_payments(moto_url, state)
    # The endpoint subscribes to the events the webhook handles, as docs/operations.md has operators
    # register it in the Stripe Dashboard: Stripe sends nothing else (charge.succeeded, ...).
    emulator = StripeEmulator(
        webhook_url=f"{api_url}/api/payments/webhook/",
        webhook_secret=payments.webhook_secret,
        api_key=payments.api_key,
        enabled_events=HANDLED_EVENTS,
    )
    emulator.load(state / STRIPE_STATE)
    port = int(os.environ.get("STRIPE_PORT") or 0)
    server = make_server("127.0.0.1", port, emulator, request_handler=_RequestLog)
    threading.Thread(target=server.serve_forever, name="stripe", daemon=True).start()
    stripe_url = f"http://127.0.0.1:{server.server_port}"
    spa_origin = os.environ.get("SPA_ORIGIN")
    # Without a SPA, Stripe sends the payer back to the local stack's own success page.
    pages = spa_origin or f"{api_url}/_local"
    os.environ.update(
        {
            "STRIPE_API_BASE": stripe_url,
            "STRIPE_API_KEY_PARAM": payments.api_key_param,
            "STRIPE_WEBHOOK_SECRET_PARAM": payments.webhook_secret_param,
            "CHECKOUT_SUCCESS_URL": f"{pages}/payment/success?session_id={{CHECKOUT_SESSION_ID}}",
            "CHECKOUT_CANCEL_URL": f"{pages}/payment/cancelled",
            "SPA_ORIGIN": spa_origin or cors.LOCAL_SPA_ORIGIN,
            "OPS_EMAIL": os.environ.get("OPS_EMAIL") or "ops@apranova.local",
        }
    )
    return server, stripe_url


GITHUB_STATE = "github-state.json"
DEMO_REPOSITORY = ("apranova-demo", "first-project")


def _start_github(state: Path) -> tuple[Any, str]:
    """The GitHub emulator, and the submissions function pointed at it (no internet here, and never
    the real host from the local stack). A demo repository with one commit is there from the start."""
    from local.github_emulator import GitHubEmulator
    from local.keepalive import make_server

    emulator = GitHubEmulator()
    emulator.load(state / GITHUB_STATE)
    owner, repo = DEMO_REPOSITORY
    if not emulator.create_repo(owner, repo)["commits"]:
        emulator.push(owner, repo, "Initial commit")
    port = int(os.environ.get("GITHUB_PORT") or 0)
    server = make_server("127.0.0.1", port, emulator, request_handler=_RequestLog)
    threading.Thread(target=server.serve_forever, name="github", daemon=True).start()
    github_url = f"http://127.0.0.1:{server.server_port}"
    os.environ["GITHUB_API_URL"] = github_url
    return server, github_url


# How often the local stack runs the scheduled jobs (AWS: the purge and the sweep daily, the idle
# stopper every 10 minutes, the student-database watchdog every minute); POST /_local/jobs/<name> runs one at once.
SCHEDULE_SECONDS = {
    "idle-workspaces": 600,
    "purge": 3600,
    "retention": 3600,
    "reconcile": 300,
    "student-db-watchdog": 60,
}


def _run_job_logged(app: Any, name: str) -> None:
    try:
        app.run_job(name)
    except Exception:  # noqa: BLE001 - a failed run is logged; the next one tries again
        log.exception("scheduled job %s failed", name)


def _run_schedules(app: Any, stop: threading.Event) -> None:
    due = dict.fromkeys(SCHEDULE_SECONDS, 0.0)
    while not stop.wait(5):
        now = time.monotonic()
        for name, every in SCHEDULE_SECONDS.items():
            if now < due[name]:
                continue
            due[name] = now + every
            _run_job_logged(app, name)


# The web app (web/, docs/principles.md §12): ``LOCAL_WEB=dev`` (what ``make dev`` sets) runs Vite's dev
# server, ``preview`` serves the last ``npm run build`` (the browser tests), unset or ``off`` none.
# Either proxies /api to this stack's API, so the app and the API share one origin.
WEB_DIR = ROOT / "web"
WEB_START_TIMEOUT = 60


def _web_mode() -> str:
    mode = (os.environ.get("LOCAL_WEB") or "off").strip().lower()
    if mode not in ("dev", "preview", "off"):
        raise SystemExit(f"LOCAL_WEB must be dev, preview or off, not {mode!r}")
    return mode


def _web_url() -> str:
    return f"http://127.0.0.1:{int(os.environ.get('WEB_PORT') or 5173)}"


def _start_web(state: Path, mode: str, web_url: str, api_url: str) -> Any:
    """Vite serving the app at ``web_url``, its /api proxied to ``api_url``; the process, once it answers."""
    import subprocess
    import urllib.request

    vite = WEB_DIR / "node_modules" / "vite" / "bin" / "vite.js"
    if not vite.exists():
        raise SystemExit("the web app is not installed: run `npm --prefix web ci` (make dev does)")
    if mode == "preview" and not (WEB_DIR / "dist" / "index.html").exists():
        raise SystemExit("LOCAL_WEB=preview serves web/dist: run `npm --prefix web run build` first")
    # The Node that package.json pins (node_modules/.bin/node) when present, else the machine's.
    pinned = ROOT / "node_modules" / ".bin" / "node"
    node = str(pinned) if pinned.exists() else "node"
    port = web_url.rsplit(":", 1)[1]
    command = [node, str(vite), *(["preview"] if mode == "preview" else []), "--host", "127.0.0.1"]
    command += ["--port", port, "--strictPort"]
    log_file = (state / "web.log").open("w")
    process = subprocess.Popen(
        command,
        cwd=WEB_DIR,
        env={**os.environ, "API_URL": api_url, "BROWSER": "none"},
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches it through our own shutdown, in order
    )
    deadline = time.monotonic() + WEB_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the web server exited with {process.returncode}: see {state / 'web.log'}")
        try:
            with urllib.request.urlopen(web_url + "/", timeout=2) as response:  # noqa: S310 - our own server
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit(f"the web server did not answer at {web_url} within {WEB_START_TIMEOUT} s")


def _stop_web(process: Any) -> None:
    import subprocess

    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def main() -> int:
    _environment()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request lines
    warnings.filterwarnings("ignore", message="No application metrics to publish")

    from apranova.observability import logger as powertools_logger

    powertools_logger.registered_handler.setStream(sys.stderr)  # type: ignore[attr-defined]

    state = state_dir()
    state.mkdir(parents=True, exist_ok=True)
    lock = (state / "stack.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"another local stack is using {state}; stop it or set LOCAL_STATE_DIR", file=sys.stderr)
        return 1
    stack_file = state / "stack.json"
    stack_file.unlink(missing_ok=True)

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    from local import heap, lambda_dispatch, moto_stack
    from local.jwt_check import JwtCheck
    from local.openapi import build as build_openapi
    from local.pooler import PgBouncer
    from local.server import LocalApi, serve

    # Take the API port first, so a busy port fails in a second, not after the whole start-up.
    port = int(os.environ.get("PORT") or 3000)
    api_url = f"http://127.0.0.1:{port}"
    openapi_cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if "doc" not in openapi_cache:
            openapi_cache["doc"] = build_openapi()
        return openapi_cache["doc"]

    # CORS as the deployed API answers it (apranova.cors), for the SPA's origin.
    web_mode = _web_mode()
    web_url = _web_url() if web_mode != "off" else None
    if web_url and not os.environ.get("SPA_ORIGIN"):
        # Every email's links and Stripe's return page point at the web app this stack serves.
        os.environ["SPA_ORIGIN"] = web_url
    spa_origin = os.environ.get("SPA_ORIGIN") or cors.LOCAL_SPA_ORIGIN
    app = LocalApi(jwt_check=None, openapi=openapi, mailbox=moto_stack.mailbox, cors_policy=cors.policy(spa_origin))
    try:
        http = serve(app, "127.0.0.1", port, request_handler=_RequestLog)
    except OSError as error:
        print(f"cannot listen on 127.0.0.1:{port} ({error.strerror}); set PORT to a free port", file=sys.stderr)
        return 1

    database_url = _database(state)
    _migrate_and_seed(database_url)

    store = moto_stack.StateStore(state)
    store.load()
    moto = moto_stack.MotoServer(port=int(os.environ.get("MOTO_PORT") or 0))
    moto.start()
    serving = stripe_started = github_started = False
    web_process: Any = None
    tools: list[Any] = []
    pooler = PgBouncer(database_url, state / "pgbouncer", port=int(os.environ.get("POOLER_PORT") or 0))
    try:
        # The functions reach the database through the pooler, as they reach RDS Proxy in AWS.
        pooler.start()
        pooler_url = _as_url(pooler.pooled(database_url))
        os.environ["DATABASE_URL"] = pooler_url
        boot = moto_stack.bootstrap(moto.url, state, spa_origin=spa_origin)
        store.save()
        store.start()
        # The functions' boto3 clients reach moto; their settings name the local resources.
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": moto.url,
                "COGNITO_USER_POOL_ID": boot.user_pool_id,
                "COGNITO_CLIENT_ID": boot.client_id,
                "UPLOADS_BUCKET": boot.buckets["uploads"],
                "DATASETS_BUCKET": boot.buckets["datasets"],
                "EXPORTS_BUCKET": boot.buckets["exports"],
                "EXPORT_FUNCTION_NAME": EXPORT_WORKER,
                "EMAIL_SENDER": boot.sender,
                "SSM_PREFIX": "/apranova/local",
            }
        )
        # The compliance API invokes the export worker asynchronously, as in AWS.
        moto_stack.register_function(moto.url, EXPORT_WORKER, "functions.compliance.export.worker.lambda_handler")
        stripe_server, stripe_url = _start_stripe(state, api_url, moto.url)
        stripe_started = True
        github_server, github_url = _start_github(state)
        github_started = True
        tools = _start_tools(state, moto.url, database_url)
        # The watchdog's first run, while the rest starts: it makes the spare databases DP enrollments
        # take, so the first ones find them ready, as in a deployed stack that has run for a minute.
        threading.Thread(target=_run_job_logged, args=(app, "student-db-watchdog"), name="spares", daemon=True).start()
        _install_workflows(state, moto.url)
        from functions.migrate.dataset import upload_dataset

        upload_dataset(moto_stack.client("s3", moto.url), boot.buckets["datasets"])
        _user_rows(database_url, boot.dev_users)

        jwt_check = JwtCheck(
            moto_url=moto.url, region=moto_stack.REGION, user_pool_id=boot.user_pool_id, client_id=boot.client_id
        )
        app.jwt_check = jwt_check
        # The workspaces' front door (issue 19): the link every workspace route, email and the web
        # app give is the door, which signs the student in and hands them to the workspace proxy.
        door = _start_workspace_door(state, moto.url, api_url, jwt_check)
        tools.append(door)
        threading.Thread(target=http.serve_forever, name="api", daemon=True).start()
        serving = True
        threading.Thread(target=_run_schedules, args=(app, stop), name="schedules", daemon=True).start()

        if web_url:
            web_process = _start_web(state, web_mode, web_url, api_url)
        info: dict[str, Any] = {
            **({"web_url": web_url} if web_url else {}),
            "api_url": api_url,
            "stripe_url": stripe_url,
            "github_url": github_url,
            "moto_url": moto.url,
            "database_url": database_url,
            "pooler_url": pooler_url,
            "workspace_url": door.url,
            "workspace_proxy_url": door.proxy_url,
            "cognito": {"user_pool_id": boot.user_pool_id, "client_id": boot.client_id},
            "dev_users": {key: {"email": u["email"], "password": u["password"]} for key, u in boot.dev_users.items()},
        }
        # The Lambda invocations (the workflow steps, the export worker) run in worker processes
        # from now on, as Lambda's environments are processes (local/lambda_workers.py): started
        # last, so they begin with the environment the handlers read.
        lambda_dispatch.use_worker_processes()
        # Start-up is over: what it built lives as long as the stack (local/heap.py).
        heap.settle()
        tmp = stack_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=2) + "\n")
        tmp.chmod(0o600)
        os.replace(tmp, stack_file)
        print(_banner({**info, "_file": stack_file}), flush=True)

        while not stop.wait(0.5):
            pass
        log.info("stopping")
    finally:
        stack_file.unlink(missing_ok=True)
        if web_process is not None:
            _stop_web(web_process)
        if serving:
            http.shutdown()
        http.server_close()
        for handle in reversed(tools):
            handle.stop()
        lambda_dispatch.stop_worker_processes()
        if stripe_started:
            stripe_server.shutdown()
            stripe_server.app.save(state / STRIPE_STATE)
        if github_started:
            github_server.shutdown()
            github_server.app.save(state / GITHUB_STATE)
        store.close()
        moto.stop()
        pooler.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
