"""Count the SQL statements a request sends, exactly, with a psycopg cursor class.

``Connection.execute`` makes its cursor through ``cursor_factory`` too, so counting in the cursor
sees every statement the code sends, whichever way it sends it. Transaction control issued by
``conn.transaction()`` (BEGIN/COMMIT) goes through the connection, not a cursor, and is not counted.
"""

from __future__ import annotations

from typing import Any

import psycopg


class StatementCounter:
    def __init__(self) -> None:
        self.count = 0

    def reset(self) -> None:
        self.count = 0

    def cursor_class(self) -> type[psycopg.Cursor[Any]]:
        counter = self

        class CountingCursor(psycopg.Cursor[Any]):
            def execute(self, query: Any, params: Any = None, **kwargs: Any) -> CountingCursor:
                counter.count += 1
                return super().execute(query, params, **kwargs)

            def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
                params_seq = list(params_seq)
                counter.count += len(params_seq)
                return super().executemany(query, params_seq, **kwargs)

            def stream(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
                counter.count += 1
                return super().stream(query, params, **kwargs)

            def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
                counter.count += 1
                return super().copy(statement, params, **kwargs)

        return CountingCursor
