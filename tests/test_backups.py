"""`flask --app wsgi db backup PATH` / `db restore PATH`: SQLite's online backup, pg_dump / pg_restore."""
from __future__ import annotations

import contextlib
import sqlite3

from webapp.domain import accounts
from webapp.storage import backups, db
from webapp.storage.models import User
from tests.conftest import PASSWORD


def _emails(domain) -> list[str]:
    return domain(lambda: sorted(u.email for u in User.select()))


def test_a_backup_restores_the_database_as_it_was(app, runner, domain, tmp_path):
    domain(accounts.create_user, "kept@example.com", PASSWORD, "admin", actor="test")
    target = tmp_path / "paywatch.backup"
    result = runner.invoke(args=["db", "backup", str(target)])
    assert result.exit_code == 0, result.output
    assert "backed up" in result.output and target.stat().st_size > 0
    domain(accounts.create_user, "later@example.com", PASSWORD, "staff", actor="test")
    assert _emails(domain) == ["kept@example.com", "later@example.com"]

    result = runner.invoke(args=["db", "restore", str(target), "--yes"])
    assert result.exit_code == 0, result.output
    assert _emails(domain) == ["kept@example.com"]
    # The restored database is a working one: it takes writes again.
    domain(accounts.create_user, "after@example.com", PASSWORD, "staff", actor="test")
    assert _emails(domain) == ["after@example.com", "kept@example.com"]


def test_a_backup_never_overwrites_a_file(app, runner, tmp_path):
    target = tmp_path / "exists.backup"
    target.write_text("precious")
    result = runner.invoke(args=["db", "backup", str(target)])
    assert result.exit_code == 1 and "exists already" in result.output
    assert target.read_text() == "precious"


def test_restoring_something_that_is_not_a_backup_changes_nothing(app, runner, domain, tmp_path):
    domain(accounts.create_user, "kept@example.com", PASSWORD, "admin", actor="test")
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a backup at all")
    result = runner.invoke(args=["db", "restore", str(junk), "--yes"])
    assert result.exit_code == 1
    assert "is not a SQLite backup" in result.output or "is not a pg_dump archive" in result.output
    assert _emails(domain) == ["kept@example.com"]


def test_the_postgres_password_never_reaches_the_command_line():
    safe, env, schema = backups._pg_parts("postgresql://pay:s3cr%40t@db:5432/paywatch?options=-csearch_path%3Dpw_1")
    assert safe == "postgresql://pay@db:5432/paywatch?options=-csearch_path%3Dpw_1"
    assert env["PGPASSWORD"] == "s3cr@t" and schema == "pw_1"


def test_a_database_whose_path_has_uri_characters_is_the_one_backed_up(tmp_path):
    """SQLite reads a '#', '?' or '%' in a `file:` URI as the start of its query: unencoded, the
    backup opened (and created) another, empty file and copied that."""
    folder = tmp_path / "shop #1 ?a=%41"
    folder.mkdir()
    live = folder / "paywatch.db"
    database = db.make_database(f"sqlite:///{live}")
    db.upgrade(database)
    database.close()
    copy = backups.backup(f"sqlite:///{live}", tmp_path / "copy.db")
    with contextlib.closing(sqlite3.connect(copy)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "schema_migration" in tables and "payment" in tables
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.db", "shop #1 ?a=%41"]
    backups.restore(f"sqlite:///{live}", copy)  # checks the copy, then writes it over the live file
