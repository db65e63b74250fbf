"""One synthesis of the CDK app per test session (a synth costs seconds; assertions cost little).

Bundling is skipped (``aws:cdk:bundling-stacks`` = []): these tests read the template, they do not
pip-install the layer. The bundlers have their own tests in test_bundling.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# jsii runs on the Node 22 that package.json pins (the machine's Node may be past its support date).
_node = ROOT / "node_modules" / ".bin" / "node"
if _node.exists():
    os.environ.setdefault("JSII_NODE", str(_node))
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory):
    from aws_cdk import assertions

    from cdk.app import build

    app, stack = build({"aws:cdk:bundling-stacks": []}, outdir=str(tmp_path_factory.mktemp("cdk.out")))
    assembly = app.synth()  # runs the validation plugins (cdk-nag): raises on any finding
    return app, stack, assembly, assertions.Template.from_stack(stack)


@pytest.fixture(scope="session")
def stack(synthesized):
    return synthesized[1]


@pytest.fixture(scope="session")
def template(synthesized):
    return synthesized[3]
