"""The CDK tests read the session's one synthesis (tests/conftest.py: ``synthesized``, ``template``)
and, where a test needs every optional context value set, one more: ``configured``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# Every optional context value, as an operator of a real stage would set them.
CONFIGURED_CONTEXT = {
    "stage": "staging",
    "webDomain": "app.apranova.example",
    "webCertificateArn": "arn:aws:acm:us-east-1:111122223333:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    "sesSenderArn": "arn:aws:ses:eu-west-1:111122223333:identity/mail.apranova.example",
    "opsEmail": "ops@apranova.example",
    "workspaceImage": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/apranova/code-server:4.96.4",
    "workspaceUrlTemplate": "https://workspaces.apranova.example/{task_id}/",
    "supersetUrl": "https://superset.apranova.example/",
    "jupyterhubUrl": "https://hub.apranova.example",
    "prefectUrl": "http://prefect.internal.apranova.example:4200",
}


@pytest.fixture(scope="session")
def stack(synthesized):
    return synthesized[1]


@pytest.fixture(scope="session")
def configured(tmp_path_factory):
    """A stage deployed with every optional context value, synthesized with cdk-nag: (validation
    report, template)."""
    from aws_cdk.assertions import Template

    from cdk.app import build

    app, stack = build(
        {"aws:cdk:bundling-stacks": [], **CONFIGURED_CONTEXT}, outdir=str(tmp_path_factory.mktemp("cdk.out"))
    )
    assembly = app.synth()
    report = json.loads((Path(assembly.directory) / "validation-report.json").read_text())
    return report, Template.from_stack(stack)


@pytest.fixture(scope="session")
def shared(tmp_path_factory):
    """A dev stage whose students share the application's instance (``studentsDatabase=shared``),
    synthesized with cdk-nag: (stack, template, validation report)."""
    from aws_cdk.assertions import Template

    from cdk.app import build

    app, stack = build(
        {"aws:cdk:bundling-stacks": [], "studentsDatabase": "shared"}, outdir=str(tmp_path_factory.mktemp("cdk.out"))
    )
    assembly = app.synth()
    report = json.loads((Path(assembly.directory) / "validation-report.json").read_text())
    return stack, Template.from_stack(stack), report


@pytest.fixture(scope="session", params=["dedicated", "shared"])
def students_server(request):
    """Both places the students' databases can be, as ``StudentsServer`` reads them (dev)."""
    from tests.infra.stack_support import StudentsServer

    if request.param == "dedicated":
        _app, stack, _assembly, template = request.getfixturevalue("synthesized")
    else:
        stack, template, _report = request.getfixturevalue("shared")
    return StudentsServer(stack, template)
