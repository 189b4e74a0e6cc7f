"""A consistent copy of the database and back: SQLite's online backup API, PostgreSQL's pg_dump / pg_restore.

backup(url, path) writes PATH (a SQLite file, or a pg_dump custom-format archive of the
schema in use); restore(url, path) puts its content back in place of the current one.
Both raise BackupError with a message that names the problem. The PostgreSQL password
reaches pg_dump / pg_restore through PGPASSWORD, never on their command line.
"""
from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from webapp.config import child_environment
from webapp.storage import sqlite_uri

PG_MAGIC = b"PGDMP"  # the first bytes of a pg_dump custom-format archive
SQLITE_MAGIC = b"SQLite format 3\x00"
TIMEOUT_S = 3600


class BackupError(Exception):
    """A backup or restore that could not be made; the message says why."""


def backup(url: str, path: str | Path) -> Path:
    """Copy the database at `url` to `path` (which must not exist yet)."""
    path = Path(path)
    if path.exists():
        raise BackupError(f"{path} exists already; choose a new file name (a backup never overwrites one)")
    if not path.parent.is_dir():
        raise BackupError(f"{path.parent} is not a directory")
    if url.startswith("sqlite:///"):
        _sqlite_copy(_sqlite_path(url), path)
        with sqlite3.connect(path) as conn:  # one self-contained file (the live database runs in WAL mode)
            conn.execute("PRAGMA journal_mode=DELETE")
        conn.close()
    else:
        _pg_dump(url, path)
    return path


def restore(url: str, path: str | Path) -> None:
    """Replace the content of the database at `url` with the backup `path`."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    head = path.read_bytes()[:16] if path.stat().st_size else b""
    if url.startswith("sqlite:///"):
        if head != SQLITE_MAGIC:
            raise BackupError(f"{path} is not a SQLite backup (made by `db backup` on SQLite)")
        _sqlite_check(path)
        _sqlite_copy(path, _sqlite_path(url))
    else:
        if not head.startswith(PG_MAGIC):
            raise BackupError(f"{path} is not a pg_dump archive (made by `db backup` on PostgreSQL)")
        _pg_restore(url, path)


def _sqlite_path(url: str) -> Path:
    return Path(url[len("sqlite:///"):])


def _sqlite_check(path: Path) -> None:
    with sqlite3.connect(sqlite_uri(path, "ro"), uri=True) as conn:
        result = conn.execute("PRAGMA quick_check").fetchone()[0]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    if result != "ok":
        raise BackupError(f"{path} is damaged: {result}")
    if "schema_migration" not in tables:
        raise BackupError(f"{path} is not a Paywatch database (no schema_migration table)")


def _sqlite_copy(source: Path, target: Path) -> None:
    """Page by page with SQLite's online backup: writers may go on meanwhile; the copy is consistent."""
    src = sqlite3.connect(sqlite_uri(source, "ro"), uri=True)
    dst = sqlite3.connect(target, timeout=30)
    try:
        src.backup(dst, pages=1024)
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite backup from {source} to {target} failed: {exc}") from None
    finally:
        dst.close()
        src.close()


def _pg_parts(url: str) -> tuple[str, dict[str, str], str | None]:
    """(URL without password, environment for libpq, schema named by search_path or None)."""
    parts = urlsplit(url)
    env = child_environment()
    netloc = parts.netloc
    if parts.password is not None:
        env["PGPASSWORD"] = unquote(parts.password)
        netloc = netloc.replace(f":{parts.password}@", "@")
    schema = None
    for option in parse_qs(parts.query).get("options", []):
        for word in option.split():
            if word.startswith("-csearch_path="):
                schema = word.split("=", 1)[1].split(",")[0].strip() or None
    scheme = "postgresql" if parts.scheme == "postgres" else parts.scheme
    return urlunsplit(parts._replace(scheme=scheme, netloc=netloc)), env, schema


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (PostgreSQL's client tools; Debian: postgresql-client)")
    return found


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise BackupError(f"{what} took longer than {TIMEOUT_S} s and was stopped") from None
    if done.returncode != 0:
        raise BackupError(f"{what} failed (exit {done.returncode}): {done.stderr.strip()[-800:]}")


def _pg_dump(url: str, path: Path) -> None:
    safe, env, schema = _pg_parts(url)
    argv = [_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--file={path}", f"--dbname={safe}"]
    if schema and schema != "public":
        argv.append(f"--schema={schema}")
    try:
        _run(argv, env, "pg_dump")
    except BackupError:
        path.unlink(missing_ok=True)  # never leave half an archive that looks like a backup
        raise


def _pg_restore(url: str, path: Path) -> None:
    safe, env, _ = _pg_parts(url)
    argv = [_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
            "--exit-on-error", f"--dbname={safe}", str(path)]
    _run(argv, env, "pg_restore")
