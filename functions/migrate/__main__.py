"""Migrate, seed and (optionally) upload the datasets from the command line.

    python -m functions.migrate --database-url URL [--datasets-bucket BUCKET]

The local stack and developers use it; boto3 finds the S3 endpoint the usual way (for moto:
``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

import argparse
import os
import sys

import psycopg

from functions.migrate.maintenance import close_maintenance_databases
from functions.migrate.runner import MigrationError, migrate
from functions.migrate.seed import seed_database


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m functions.migrate", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"), help="default: $DATABASE_URL")
    parser.add_argument("--datasets-bucket", default=None, help="upload the course datasets to this bucket")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or DATABASE_URL) is required")
    try:
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            applied = migrate(conn)
            seeded = seed_database(conn)
            still_open = close_maintenance_databases(conn)
    except MigrationError as error:
        print(f"migration failed: {error}", file=sys.stderr)
        return 1
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    changes = ", ".join(f"{key}={value}" for key, value in seeded.items() if value)
    print(f"seed: {changes or 'no changes'}")
    if still_open:
        print(f"still open to PUBLIC (CONNECT): {', '.join(still_open)}", file=sys.stderr)
    if args.datasets_bucket:
        import boto3

        from functions.migrate.dataset import upload_dataset

        print(f"dataset: s3://{args.datasets_bucket}/{upload_dataset(boto3.client('s3'), args.datasets_bucket)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
