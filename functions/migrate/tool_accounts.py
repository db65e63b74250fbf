"""The shared tools' own accounts, made by the migration at every deploy (issue 19).

Superset, Prefect and JupyterHub keep their state in a database of their own on the application's
instance, each under its own login role, whose password the stack generated in Secrets Manager
(``TOOL_DATABASES``: tool → secret ARN, a JSON ``{username, password, dbname}``). Each run makes the
role and the database when missing and sets the role's password to the secret's (so a rotated or
restored secret is taken up at the next deploy); the database is closed to PUBLIC and owned by the
role. A tool's role holds no privilege on the application's tables (nothing is granted to it there).

The provisioning steps read each tool's administrative credential from SSM SecureStrings that
CloudFormation cannot create; the stack generates them in Secrets Manager (``TOOL_ADMIN_SECRETS``)
and this step writes them where the steps read them (``{prefix}/tools/<tool>/...``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import sql

# Tool → SSM leaf → how its value is made from the admin secret (functions/provision/tools/ read these).
ADMIN_PARAMETERS = {
    "superset": {"admin-username": lambda s: s["username"], "admin-password": lambda s: s["password"]},
    "jupyterhub": {"api-token": lambda s: s["api-token"]},
    # Prefect's server checks "user:password" (PREFECT_SERVER_API_AUTH_STRING).
    "prefect": {"auth-string": lambda s: f"{s['username']}:{s['password']}"},
}


def ensure_tool_database(conn: Any, *, role: str, password: str, database: str) -> bool:
    """The tool's login role with ``password`` and its own database, owned by it and closed to
    PUBLIC; True when the database was created. ``conn``: autocommit, as a role that may create
    roles and databases (the RDS master user)."""
    from functions.migrate.handler import ensure_database

    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None
    verb = "ALTER" if exists else "CREATE"
    conn.execute(
        sql.SQL(verb + " ROLE {} WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)
        )
    )
    # The master user must be able to act as the role to make it a database's owner (PostgreSQL 16).
    conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(role)))
    created = ensure_database(conn, database)
    conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(database), sql.Identifier(role)))
    conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))
    conn.execute(
        sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(sql.Identifier(database), sql.Identifier(role))
    )
    return created


def publish_admin_credentials(ssm: Any, prefix: str, tool: str, secret: Mapping[str, str]) -> list[str]:
    """Writes ``tool``'s admin credential parameters (SecureStrings) from its secret; their names."""
    names = []
    for leaf, value_of in ADMIN_PARAMETERS[tool].items():
        name = f"{prefix}/tools/{tool}/{leaf}"
        ssm.put_parameter(
            Name=name,
            Value=value_of(secret),
            Type="SecureString",
            Overwrite=True,
            Description=f"ApraNova: {tool}'s admin credential, from the stack's secret (written by the migration)",
        )
        names.append(name)
    return names
