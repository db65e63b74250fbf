"""Fixtures several integration modules share: one definition here instead of a copy per module.

``pg`` is an autocommit connection (rows as dicts) to the module's own database, ``module_url``,
which the module defines (tests/integration/governance_support.py ``fresh_database``).
``pool`` is not autouse (most modules need no user pool): a module that signs people up takes it
with ``pytestmark = pytest.mark.usefixtures("pool")``, or names it as an argument.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.integration.auth_support import active_consent_versions, use_pool


@pytest.fixture(scope="module")
def pool(database_url: str) -> Iterator[dict[str, str]]:
    """A fresh Cognito user pool (moto) for the module, the functions pointed at it."""
    yield from use_pool()


@pytest.fixture(scope="module")
def versions(database_url: str) -> dict[str, str]:
    """The policy versions in force: what a registration or a consent must accept."""
    return active_consent_versions(database_url)


@pytest.fixture(scope="module")
def pg(module_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(module_url, autocommit=True, row_factory=dict_row) as connection:
        yield connection
