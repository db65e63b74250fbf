"""Student login roles and databases are server-wide: a test that provisions student databases
drops them with its admin database, or they pile up on the shared server across runs."""

from __future__ import annotations

import psycopg
from psycopg import sql

STUDENT_NAME = "^s_[0-9a-f]{32}$"


def drop_database_and_student_roles(admin_url: str, dbname: str) -> None:
    """Drops ``dbname`` (the students' admin database), its spare databases, the student databases
    and roles of the students recorded in ``admin_url``'s database (the application's credentials
    rows), and any student role granted CONNECT on ``dbname`` itself."""
    from functions.provision.tools.student_database import spare_prefix

    with psycopg.connect(admin_url, autocommit=True) as conn:
        roles: set[str] = set()
        if conn.execute("SELECT to_regclass('student_database_credentials')").fetchone()[0] is not None:
            roles.update(r[0] for r in conn.execute("SELECT role_name FROM student_database_credentials"))
        roles.update(
            r[0]
            for r in conn.execute(
                """
                SELECT DISTINCT r.rolname FROM pg_database d, aclexplode(d.datacl) acl
                JOIN pg_roles r ON r.oid = acl.grantee
                WHERE d.datname = %s AND NOT r.rolsuper
                """,
                (dbname,),
            )
        )
        roles = {role for role in roles if conn.execute("SELECT %s ~ %s", (role, STUDENT_NAME)).fetchone()[0]}
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        spares = conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (spare_prefix(dbname),)
        ).fetchall()
        for (spare,) in spares:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(spare)))
        for role in sorted(roles):
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
