"""The local stacks these tests start install the workflows CDK synthesizes: the session's one
synthesis is stored where ``local.workflows.cached`` finds it, so no stack synthesizes again."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def synthesized_workflows(template) -> None:
    from local import workflows

    workflows.store(workflows.extract(template.to_json()))
