"""The register of personal data (functions/compliance/register.py, docs/personal-data.md) against the
live schema of the run's migrated database: every column of every table is classified, nothing it
names is missing, and the committed markdown is the one the register generates."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from functions.compliance import register
from functions.compliance.export.repository import rows_query

ROOT = Path(__file__).resolve().parents[2]


def live_columns(conn) -> set[tuple[str, str]]:
    rows = conn.execute(
        """
        SELECT c.table_name, c.column_name
        FROM information_schema.columns c
        JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
        WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
        """
    ).fetchall()
    return {(row["table_name"], row["column_name"]) for row in rows}


def registered_columns() -> set[tuple[str, str]]:
    return {(table.name, column) for table in register.TABLES for column in table.column_names}


def test_every_live_column_is_classified_and_every_registered_column_exists(conn) -> None:
    live, registered = live_columns(conn), registered_columns()
    unclassified = sorted(live - registered)
    assert not unclassified, (
        f"columns not in the register of personal data: {unclassified}; classify them in "
        "functions/compliance/register.py and regenerate docs/personal-data.md"
    )
    missing = sorted(registered - live)
    assert not missing, f"the register names columns the schema does not have: {missing}"


def test_register_names_each_table_and_column_once() -> None:
    names = [table.name for table in register.TABLES]
    assert len(names) == len(set(names))
    for table in register.TABLES:
        assert len(table.column_names) == len(set(table.column_names)), table.name


def test_the_committed_markdown_is_the_generated_one() -> None:
    committed = (ROOT / "docs" / "personal-data.md").read_text(encoding="utf-8")
    assert committed == register.markdown(), (
        "docs/personal-data.md is stale: run `python -m functions.compliance.register > docs/personal-data.md`"
    )


def test_personal_tables_say_why_how_long_and_what_happens() -> None:
    for table in register.TABLES:
        if not table.personal:
            assert table.purge is register.Purge.NOT_PERSONAL and not table.selector, table.name
            continue
        assert table.legal_basis and table.retention and table.selector, table.name
        assert table.purge is not register.Purge.NOT_PERSONAL, table.name
        assert table.exported or table.export_excluded, table.name
        for column in table.columns:
            assert not column.only_when or column.personal, (table.name, column.name)
    for store in register.STORES:
        assert all((store.location, store.holds, store.purpose, store.legal_basis, store.retention)), store
        assert store.export and store.purge, store


# Services outside our database and buckets that our code hands personal data to, with what it hands
# over: the register must say where that data lives and what export and purge do with it.
PROCESSORS = {
    # functions/payments/stripe_gateway.py: the customer (email, name, user id in its metadata), and
    # the user id in each Checkout Session's and PaymentIntent's metadata.
    "Stripe": ("email", "name", "user id"),
    # The enrollment and deprovision executions' input and history name the user id.
    "Step Functions": ("user id",),
}


@pytest.mark.parametrize(("kind", "holds"), PROCESSORS.items())
def test_every_processor_we_hand_personal_data_to_is_registered(kind: str, holds: tuple[str, ...]) -> None:
    stores = [store for store in register.STORES if store.kind == kind]
    assert stores, f"the register has no store of kind {kind!r}"
    described = " ".join(f"{store.location} {store.holds}" for store in stores).lower()
    assert all(word in described for word in holds), (kind, described)


def test_retention_policies_named_exist(conn) -> None:
    seeded = {row["resource_type"] for row in conn.execute("SELECT resource_type FROM data_retention_policies")}
    named = {table.retention_policy for table in register.TABLES if table.retention_policy}
    assert named <= seeded, named - seeded


def test_every_reference_to_users_is_an_identifier_the_selector_follows(conn) -> None:
    """A foreign key to users is a way to find a person's rows: the register must call it an
    identifier and the table's selector must use it (else export and purge would miss rows)."""
    references = conn.execute(
        """
        SELECT rel.relname AS table_name, att.attname AS column_name
        FROM pg_constraint con
        JOIN pg_class rel ON rel.oid = con.conrelid
        JOIN pg_namespace ns ON ns.oid = rel.relnamespace
        JOIN LATERAL unnest(con.conkey) AS key(attnum) ON true
        JOIN pg_attribute att ON att.attrelid = con.conrelid AND att.attnum = key.attnum
        WHERE con.contype = 'f' AND con.confrelid = 'public.users'::regclass AND ns.nspname = 'public'
        """
    ).fetchall()
    assert references
    for ref in references:
        table = register.table(ref["table_name"])
        column = next(c for c in table.columns if c.name == ref["column_name"])
        assert column.category is register.Category.IDENTIFIER, (table.name, column.name)
        assert f"t.{column.name} = %(user_id)s" in table.selector, (table.name, column.name)


@pytest.mark.parametrize("table", [t for t in register.TABLES if t.personal], ids=lambda t: t.name)
def test_each_selector_runs_against_the_schema(database_url: str, table: register.Table) -> None:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(rows_query(table), {"user_id": str(uuid.uuid4()), "email": "nobody@example.com"})
        assert [d.name for d in rows.description] == list(table.column_names)
        assert rows.fetchall() == []
