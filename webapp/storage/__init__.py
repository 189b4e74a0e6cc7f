"""Storage: the database handle, the peewee models, hand-written hot-path SQL and the migrations.

Imports only webapp.config and libraries; everything above may import it.
"""

from urllib.parse import quote as _quote


def sqlite_uri(path, mode: str) -> str:
    """A `file:` URI for sqlite3.connect(…, uri=True) that opens exactly `path` (a '#', '?' or '%' in
    it percent-encoded: unencoded, SQLite reads the rest as the URI's query and opens another file)."""
    return f"file:{_quote(str(path))}?mode={mode}"
