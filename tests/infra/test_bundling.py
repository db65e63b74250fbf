"""The Docker-free bundlers: what lands in a function's and the layer's asset, and their hashes."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import DockerImage

from cdk.constructs import common_layer
from cdk.constructs.bundling import ROOT, CopyBundler, tree_hash
from cdk.constructs.python_function import function_sources

IMAGE = DockerImage.from_registry("unused")


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_function_bundle_keeps_the_package_path(tmp_path):
    assert CopyBundler(function_sources("health")).try_bundle(str(tmp_path), image=IMAGE) is True
    files = _files(tmp_path)
    assert "functions/__init__.py" in files
    assert "functions/health/handler.py" in files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    # Only this function: no other domain, no tests, no layer code (that comes from the layer).
    assert {f.split("/")[1] for f in files if f.count("/") > 1} == {"health"}
    assert {f.split("/")[0] for f in files} == {"functions"}


def test_extra_paths_are_bundled_beside_the_package(tmp_path):
    CopyBundler(function_sources("migrate", ["migrations"])).try_bundle(str(tmp_path), image=IMAGE)
    expected = {str(p.relative_to(ROOT)) for p in (ROOT / "migrations").rglob("*") if p.is_file()}
    assert expected <= _files(tmp_path)


def test_a_function_hash_depends_only_on_its_own_sources():
    health = tree_hash(function_sources("health"))
    assert health == tree_hash(function_sources("health"))
    assert health != tree_hash(function_sources("curriculum"))
    sources = {str(p.relative_to(ROOT)) for p in function_sources("health")}
    assert sources == {"functions/__init__.py", "functions/health"}


@pytest.mark.skipif(
    not common_layer.dependencies_dir().is_dir(),
    reason="the layer's pip cache is not built yet (`make synth` builds it; this test stays offline)",
)
def test_layer_bundle_holds_apranova_and_arm64_wheels(tmp_path):
    assert common_layer.LayerBundler().try_bundle(str(tmp_path), image=IMAGE) is True
    python = tmp_path / "python"
    assert (python / "apranova" / "routes.py").is_file()
    for package in ("aws_lambda_powertools", "pydantic", "psycopg", "boto3", "stripe", "jwt"):
        assert (python / package).is_dir(), package
    # psycopg[binary] must be the aarch64 manylinux build for CPython 3.12.
    native = [p.name for p in (python / "psycopg_binary").glob("*.so")]
    assert native and all("cpython-312-aarch64-linux-gnu" in name for name in native), native
    wheel = next(python.glob("psycopg_binary-*.dist-info")) / "WHEEL"
    assert "aarch64" in wheel.read_text()
    assert list((python / "pydantic_core").glob("*cpython-312-aarch64-linux-gnu.so"))
    assert not (python / "bin").exists()
    assert not [p for p in python.rglob("__pycache__")]
