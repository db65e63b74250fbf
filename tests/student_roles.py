"""Student login roles are server-wide: a test that provisions student databases drops the roles
with its database, or they pile up on the shared server across runs."""

from __future__ import annotations

import psycopg
from psycopg import sql


def drop_database_and_student_roles(admin_url: str, dbname: str) -> None:
    """Drops ``dbname`` and the provisioned student roles (those granted CONNECT on it)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone() is None:
            return
        # Roles granted CONNECT on this database explicitly (its ACL), not every role PUBLIC lets in.
        roles = [
            r[0]
            for r in conn.execute(
                """
                SELECT DISTINCT r.rolname FROM pg_database d, aclexplode(d.datacl) acl
                JOIN pg_roles r ON r.oid = acl.grantee
                WHERE d.datname = %s AND r.rolname ~ '^s_[0-9a-f]{32}$' AND NOT r.rolsuper
                """,
                (dbname,),
            )
        ]
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(dbname)))
        for role in roles:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
