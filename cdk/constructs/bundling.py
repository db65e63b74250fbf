"""Docker-free asset bundling: copy exactly the files a Lambda needs, and hash only those.

CDK calls ``try_bundle`` before it would fall back to Docker; returning True means the output
directory is complete. The asset hash is computed from the copied sources (not the repository
root the asset points at), so an edit elsewhere in the tree leaves the asset, and the deployed
function, unchanged.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable
from pathlib import Path

import jsii
from aws_cdk import DockerImage, ILocalBundling

ROOT = Path(__file__).resolve().parents[2]
# Bumped when the bundle layout changes, so every asset is rebuilt once.
LAYOUT_VERSION = "1"
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache")
# Never called: local bundling always succeeds, but BundlingOptions requires an image.
UNUSED_IMAGE = DockerImage.from_registry("unused")


def _files(path: Path) -> Iterable[Path]:
    if path.is_file():
        yield path
        return
    for file in sorted(path.rglob("*")):
        parts = set(file.relative_to(path).parts)
        if file.is_file() and "__pycache__" not in parts and file.suffix != ".pyc":
            yield file


def tree_hash(sources: Iterable[Path], *extra: str) -> str:
    """sha256 over the relative names and contents of every file under ``sources``."""
    digest = hashlib.sha256(LAYOUT_VERSION.encode())
    for item in extra:
        digest.update(item.encode())
    for source in sources:
        for file in _files(source):
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(b"\0")
            digest.update(file.read_bytes())
    return digest.hexdigest()


def copy_into(output_dir: Path, source: Path, target: str | None = None) -> None:
    """Copy a repo file or folder into the bundle at its repo-relative path (or ``target``)."""
    destination = output_dir / (target or str(source.relative_to(ROOT)))
    if source.is_dir():
        shutil.copytree(source, destination, ignore=IGNORED, dirs_exist_ok=True)
    else:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)


@jsii.implements(ILocalBundling)
class CopyBundler:
    """Copies repository paths into the asset, keeping their repo-relative layout."""

    def __init__(self, sources: Iterable[Path]) -> None:
        self.sources = list(sources)

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: object) -> bool:
        for source in self.sources:
            copy_into(Path(output_dir), source)
        return True
