"""The maintenance databases of a server students sign in to are closed to them.

``postgres`` and ``template1`` grant CONNECT to PUBLIC by default, so any role on the server (every
student) could connect to them and use them as a workspace outside its own database, and see what
others left in them. Revoking CONNECT from PUBLIC leaves them to superusers and database owners
(the RDS master user, the provisioner). A database's ACL is not copied by CREATE DATABASE, so the
databases made from ``template1`` are not affected. Run at every deploy by the migrate function
and by the local stack; idempotent.

On RDS the master user is not a superuser: if it does not own a maintenance database and holds no
grant option on it, PostgreSQL answers the REVOKE with a warning and changes nothing. The function
reports each database still open to PUBLIC so that such a case is seen, not assumed away.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql
from psycopg.rows import tuple_row

MAINTENANCE_DATABASES = ("postgres", "template1")


def close_maintenance_databases(conn: Any) -> list[str]:
    """REVOKE CONNECT ... FROM PUBLIC on the maintenance databases; returns those still open."""
    still_open = []
    with conn.cursor(row_factory=tuple_row) as cur:
        for name in MAINTENANCE_DATABASES:
            if cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                continue
            cur.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))
            if cur.execute("SELECT has_database_privilege('public', %s, 'CONNECT')", (name,)).fetchone()[0]:
                still_open.append(name)
    return still_open
