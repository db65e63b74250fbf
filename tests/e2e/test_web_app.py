"""The web app in a real browser (issue 17): the local stack started as ``make dev`` starts it, with
the built app served on its own origin (``LOCAL_WEB=preview``: the production bundle, /api proxied
to the API), and Playwright driving Debian's Chromium through the students' journeys in
``web/e2e/`` (axe on every page, screenshots at 1280 and 375 px as artifacts under
``web/e2e/screenshots/``). The landing page's JavaScript budget is measured on the same build.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.test_local_stack import Stack, _free_port

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
LANDING_JS_BUDGET_GZIP = 150 * 1024


def _node() -> str:
    pinned = ROOT / "node_modules" / ".bin" / "node"
    return str(pinned) if pinned.exists() else "node"


@pytest.fixture(scope="module")
def built_app() -> Path:
    if not (WEB / "node_modules" / "vite").exists():
        pytest.fail("the web app's packages are not installed: run `make web-setup`")
    subprocess.run(
        [_node(), "node_modules/vite/bin/vite.js", "build", "--logLevel", "warn"], cwd=WEB, check=True, timeout=300
    )
    return WEB / "dist"


@pytest.fixture(scope="module")
def web_stack(built_app: Path, tmp_path_factory: pytest.TempPathFactory, make_database) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("web-state") / "state"
    database = make_database("apranova_web")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOCAL_WEB", "preview")
        patch.setenv("WEB_PORT", str(_free_port()))
        patch.delenv("SPA_ORIGIN", raising=False)
        stack = Stack(state, database, _free_port())
    try:
        yield stack
    finally:
        stack.stop(timeout=30)  # the web server, the tools and moto stop in turn
        stack.drop_students_database()


def test_the_landing_page_javascript_is_within_budget(built_app: Path) -> None:
    """What the browser must fetch before the landing page runs: the entry chunk and its static
    imports (every other page is a lazy chunk), gzipped."""
    manifest = json.loads((built_app / ".vite" / "manifest.json").read_text())
    entry = next(key for key, chunk in manifest.items() if chunk.get("isEntry"))
    seen: set[str] = set()
    todo = [entry]
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        todo.extend(manifest[key].get("imports", []))
    files = {manifest[key]["file"] for key in seen if manifest[key]["file"].endswith(".js")}
    size = sum(len(gzip.compress((built_app / name).read_bytes(), 9)) for name in files)
    assert size <= LANDING_JS_BUDGET_GZIP, f"landing page JavaScript is {size / 1024:.1f} kB gzip ({sorted(files)})"
    # The student pages are split off: lazy chunks, not in the landing page's bundle.
    assert any(chunk.get("isDynamicEntry") and "Dashboard" in key for key, chunk in manifest.items())


def test_one_origin_serves_the_app_and_the_api(web_stack: Stack) -> None:
    web_url = web_stack.info["web_url"]
    page = requests.get(f"{web_url}/dashboard", timeout=10)
    assert page.status_code == 200 and '<div id="root">' in page.text  # the SPA's fallback route
    tracks = requests.get(f"{web_url}/api/curriculum/tracks/", timeout=10)
    assert tracks.status_code == 200
    assert {track["code"] for track in tracks.json()["items"]} == {"DP", "FSD"}


def _run_specs(web_stack: Stack, *specs: str, **extra_env: str) -> None:
    """Playwright runs ``specs`` (web/e2e/) in Debian's Chromium against the stack; they pass."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Chromium is not installed: run `make chromium`")
    env = {
        **os.environ,
        "WEB_URL": web_stack.info["web_url"],
        "API_URL": web_stack.info["api_url"],
        "CHROMIUM_PATH": chromium,
        **extra_env,
    }
    run = subprocess.run(
        [_node(), "node_modules/@playwright/test/cli.js", "test", *specs],
        cwd=WEB,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, f"{run.stdout[-6000:]}\n{run.stderr[-3000:]}\n--- stack ---\n{web_stack.output()}"


def test_the_students_journeys_in_chromium(web_stack: Stack) -> None:
    _run_specs(web_stack, "dp-journey", "fsd-pay-first")


def test_the_admin_console_in_chromium(web_stack: Stack) -> None:
    """Issue 18: the admin refunds a student who paid (the payment followed to refunded, the tools
    to deprovisioned) and publishes a privacy policy version the student must then accept
    (``web/e2e/admin-console.spec.ts``; axe and screenshots on every admin page)."""
    admin = web_stack.info["dev_users"]["admin"]
    _run_specs(web_stack, "admin-console", ADMIN_EMAIL=admin["email"], ADMIN_PASSWORD=admin["password"])


def test_the_trainers_review_in_chromium(web_stack: Stack) -> None:
    """Issue 18: a DP student hands in project 1; the DP trainer (assigned at enrollment) opens the
    PDF from the queue, sends it back with feedback, approves the resubmission and sees project 2
    unlocked (``web/e2e/trainer-review.spec.ts``; axe and screenshots on every trainer page)."""
    trainer = web_stack.info["dev_users"]["trainer_dp"]
    _run_specs(web_stack, "trainer-review", TRAINER_EMAIL=trainer["email"], TRAINER_PASSWORD=trainer["password"])
