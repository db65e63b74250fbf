"""The common layer: the shared ``apranova`` package plus every runtime dependency.

The dependencies are pyproject.toml's ``[project].dependencies`` held to constraints.txt, so the
layer runs the versions the tests ran. pip installs the arm64 / CPython 3.12 wheels (never an
sdist: nothing compiles on this machine for another one) into a cache folder keyed by the
dependency set, so only the first synth after a pin change downloads anything.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess  # noqa: S404 - runs this interpreter's pip with a fixed argument list
import sys
import tomllib
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from cdk.constructs.bundling import ROOT, UNUSED_IMAGE, copy_into, tree_hash
from cdk.constructs.python_function import ARCHITECTURE, RUNTIME

PACKAGE = ROOT / "layers" / "common" / "python" / "apranova"
CONSTRAINTS = ROOT / "constraints.txt"
CACHE = ROOT / ".build"
# Lambda's Python 3.12 runs on Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels load there,
# and psycopg-binary ships aarch64 wheels only for manylinux_2_28.
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
PYTHON_VERSION = "3.12"


def runtime_dependencies() -> list[str]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return list(tomllib.load(file)["project"]["dependencies"])


def dependencies_key() -> str:
    """Identifies one installed dependency set: requirements, constraints and target platform."""
    digest = hashlib.sha256()
    for part in (*runtime_dependencies(), CONSTRAINTS.read_text(), *PLATFORMS, PYTHON_VERSION):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def dependencies_dir() -> Path:
    """The cached pip result for the current dependency set (it may not exist yet)."""
    return CACHE / f"layer-deps-{dependencies_key()}"


def install_dependencies() -> Path:
    """Returns the cache folder, installing into it first when it is missing."""
    target = dependencies_dir()
    if target.is_dir():
        return target
    staging = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-compile", *platforms, "--implementation", "cp", "--python-version", PYTHON_VERSION,
        "--only-binary=:all:", "-t", str(staging / "python"), "-c", str(CONSTRAINTS),
        *runtime_dependencies(),
    ]  # fmt: skip
    subprocess.run(command, check=True)  # noqa: S603 - fixed command, no shell
    # Console scripts are useless in a layer.
    shutil.rmtree(staging / "python" / "bin", ignore_errors=True)
    staging.rename(target)  # atomic: a crashed install never looks like a cache hit
    return target


@jsii.implements(ILocalBundling)
class LayerBundler:
    """Writes ``python/`` (Lambda's layer path): the cached dependencies, then ``apranova``."""

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: object) -> bool:
        output = Path(output_dir)
        copy_into(output, install_dependencies() / "python", "python")
        copy_into(output, PACKAGE, "python/apranova")
        return True


def layer_code() -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(PACKAGE.parent),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=tree_hash([PACKAGE], dependencies_key()),
        bundling=BundlingOptions(image=UNUSED_IMAGE, local=LayerBundler()),
    )


class CommonLayer(Construct):
    def __init__(self, scope: Construct, id: str, *, removal_policy: RemovalPolicy = RemovalPolicy.RETAIN) -> None:
        super().__init__(scope, id)
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=layer_code(),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="ApraNova shared code (apranova) and pinned runtime dependencies",
            # Old versions stay until no function uses them; RETAIN avoids a failed rollback.
            removal_policy=removal_policy,
        )
