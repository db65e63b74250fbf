"""The export archive: a ZIP written to a temporary file piece by piece (never all in memory).

- ``data.json``: one key per source (each table of the register with the person's rows, ``cognito``,
  ``files``), rows as JSON objects, times in ISO 8601 UTC;
- ``files/...``: every file the person uploaded, as stored;
- ``README.md``: what each part is, why we hold it, on what legal basis and for how long, written
  from the register (so the archive and docs/personal-data.md cannot drift).
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import ipaddress
import json
import shutil
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import IO, Any

from functions.compliance import register

FORMAT_VERSION = 1
CHUNK = 1024 * 1024


def json_value(value: Any) -> Any:
    """``json.dumps`` default: the database's and AWS's types as JSON."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal) or isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network | ipaddress.IPv4Interface):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _dump(value: Any) -> str:
    return json.dumps(value, default=json_value, ensure_ascii=False, sort_keys=True)


class Archive:
    """Writes the archive into ``target`` (a binary file opened for writing)."""

    def __init__(self, target: IO[bytes]) -> None:
        self._zip = zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)

    def write_data(self, sections: Iterable[tuple[str, Any]]) -> dict[str, int]:
        """``data.json`` from (key, value) pairs in order; a value that is an iterator (rows) is
        streamed as a JSON array. Returns the number of items per key."""
        counts: dict[str, int] = {}
        with self._zip.open("data.json", "w", force_zip64=True) as raw:
            out = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
            out.write("{\n")
            for index, (key, value) in enumerate(sections):
                out.write(("," if index else "") + f"\n{json.dumps(key)}: ")
                if isinstance(value, Iterator):
                    counts[key] = self._write_array(out, value)
                else:
                    out.write(_dump(value))
                    counts[key] = len(value) if isinstance(value, list | dict) else 1
            out.write("\n}\n")
            out.flush()
            out.detach()
        return counts

    @staticmethod
    def _write_array(out: io.TextIOWrapper, rows: Iterator[Any]) -> int:
        count = 0
        out.write("[")
        for row in rows:
            out.write(("," if count else "") + "\n  " + _dump(row))
            count += 1
        out.write("\n]" if count else "]")
        return count

    def write_file(self, name: str, body: IO[bytes]) -> None:
        with self._zip.open(name, "w", force_zip64=True) as entry:
            shutil.copyfileobj(body, entry, CHUNK)

    def write_text(self, name: str, text: str) -> None:
        self._zip.writestr(name, text.encode("utf-8"))

    def close(self) -> None:
        self._zip.close()


def archive_path(user_id: str, key: str) -> str:
    """Where an uploaded object goes in the archive: ``files/`` + its key below the person's prefix."""
    prefix = register.uploads_prefix(user_id)
    relative = key[len(prefix) :] if key.startswith(prefix) else key
    parts = [part for part in relative.split("/") if part not in ("", ".", "..")]
    return "files/" + "/".join(parts)


def readme(export_id: str, generated_at: dt.datetime, counts: dict[str, int]) -> str:
    """The archive's README, from the register."""
    lines = [
        "# Your ApraNova data",
        "",
        f"Export `{export_id}`, generated {json_value(generated_at)}.",
        "",
        "This archive holds every record ApraNova keeps about you. `data.json` has one key per source, each a",
        "list of records (times in ISO 8601, UTC). `files/` holds the files you uploaded, as you uploaded them.",
        "Values that are another person's data (for example the IP address of an administrator who acted on",
        "your account) are left out (null), as the law requires.",
        "",
        "## data.json",
        "",
    ]
    for table in register.exported_tables():
        lines += [
            f"### `{table.name}` ({counts.get(table.name, 0)} records)",
            "",
            f"- What: {table.purpose}",
            f"- Why we hold it, legal basis: {table.legal_basis}",
            f"- How long: {table.retention}",
            f"- After an account deletion: {table.purge.value}." + (f" {table.purge_note}" if table.purge_note else ""),
            "",
            "Fields: " + ", ".join(f"`{column.name}`" + (f" ({column.note})" if column.note else "")
                                   for column in table.columns),
            "",
        ]  # fmt: skip
    lines += ["## Other places we keep data about you", ""]
    for store in register.STORES:
        counted = f" ({counts[store.export_key]} records)" if store.export_key in counts else ""
        lines += [
            f"### {store.kind}: {store.location}{counted}",
            "",
            f"- What: {store.holds}",
            f"- Why we hold it, legal basis: {store.purpose} {store.legal_basis}",
            f"- How long: {store.retention}",
            f"- In this export: {store.export}",
            f"- After an account deletion: {store.purge}",
            "",
        ]
    lines += [
        "## Questions",
        "",
        "You can ask for a new export once a day from your account page, correct your name there, or delete",
        "your account (after a grace period in which you can change your mind, everything above is erased",
        "except payment records, which the law makes us keep and which then carry no name or email).",
        "",
    ]
    return "\n".join(lines)
