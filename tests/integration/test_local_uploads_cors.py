"""The local stack's moto uploads bucket has the CORS rule AWS's has (apranova.cors): a browser on
the web app's origin may upload straight to it, a page of any other origin is refused its preflight."""

from __future__ import annotations

import pytest
import requests

from apranova import cors
from local import moto_stack

ORIGIN = "http://127.0.0.1:5173"


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    server = moto_stack.MotoServer()
    server.start()
    try:
        boot = moto_stack.bootstrap(server.url, tmp_path_factory.mktemp("state"), spa_origin=ORIGIN)
        yield server.url, boot
    finally:
        server.stop()


def _preflight(url: str, bucket: str, origin: str, method: str = "POST") -> requests.Response:
    return requests.options(
        f"{url}/{bucket}",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=10,
    )


def test_the_uploads_bucket_has_the_deployed_rule(booted):
    url, boot = booted
    s3 = moto_stack.client("s3", url)
    rules = s3.get_bucket_cors(Bucket=boot.buckets["uploads"])["CORSRules"]
    assert [{k: v for k, v in rule.items() if k != "ID"} for rule in rules] == [cors.uploads_bucket_rule(ORIGIN)]


def test_a_preflight_from_the_web_app_passes_and_from_elsewhere_fails(booted):
    url, boot = booted
    allowed = _preflight(url, boot.buckets["uploads"], ORIGIN)
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert set(allowed.headers["Access-Control-Allow-Methods"].replace(" ", "").split(",")) == {"POST", "GET"}
    assert _preflight(url, boot.buckets["uploads"], "https://evil.example").status_code == 403
