"""Migrations cannot drift from the models: the schema the numbered migrations build equals the one
the peewee models declare (tables, columns with type / null / primary key, indexes, foreign keys),
on SQLite and on PostgreSQL. A model change without its migration (or the reverse) fails here."""
import secrets
from contextlib import contextmanager
from urllib.parse import quote

import psycopg2

from tests.conftest import TEST_DATABASE_URL
from webapp.storage import db
from webapp.storage.models import MODELS
from webapp.storage.search import FTS_TABLES

RUNNER_TABLES = {"schema_migration", "migratehistory"}  # the migration runner's own bookkeeping
# SQLite's planner statistics: PRAGMA optimize after the migrations (0095's backfill reads) runs ANALYZE.
# Indexes made by their migrations only: per backend (0097, 0100: the paid requests' time to pay;
# 0098: payments by amount) or partial (0100: paid requests by paid_at, overall and per agent).
STATISTICS = ("sqlite_stat", "payment_request_time_to_pay", "payment_amount_desc_nulls_last",
              "payment_request_paid_by_")
# The text-search indexes are per backend and made by migration 0084 only (an FTS5 table and its
# shadow tables on SQLite, a trigram GIN index on PostgreSQL); tests/test_search.py covers them.
SEARCH = tuple(FTS_TABLES.values())


def _search_structure(name: str) -> bool:
    return name.startswith(SEARCH + STATISTICS)


@contextmanager
def fresh_database(backend, tmp_path, name):
    if backend == "sqlite":
        database = db.make_database(f"sqlite:///{tmp_path / name}.db")
        yield database
        database.close()
        return
    schema = f"pwschema_{name}_{secrets.token_hex(4)}"
    admin = psycopg2.connect(TEST_DATABASE_URL)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in TEST_DATABASE_URL else "?"
    database = db.make_database(f"{TEST_DATABASE_URL}{sep}options={quote(f'-csearch_path={schema}')}")
    try:
        yield database
    finally:
        database.close()
        with admin.cursor() as cur:
            cur.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


def describe(database) -> dict:
    """Everything about the schema that matters, in comparable form."""
    shape = {}
    with database.connection_context():
        for table in sorted(t for t in set(database.get_tables()) - RUNNER_TABLES if not _search_structure(t)):
            columns = {(c.name, c.data_type.lower(), c.null, c.primary_key) for c in database.get_columns(table)}
            # By what they cover, not by name: the first migrations' frozen models named their
            # indexes after the class ("paymentrequest_…"), the models after the table.
            indexes = {(tuple(i.columns), i.unique) for i in database.get_indexes(table)
                       if not i.name.startswith("sqlite_autoindex") and not _search_structure(i.name)}
            keys = {(f.column, f.dest_table, f.dest_column) for f in database.get_foreign_keys(table)}
            shape[table] = {"columns": columns, "indexes": indexes, "foreign keys": keys}
    return shape


def differences(built: dict, declared: dict) -> list[str]:
    found = [f"table {t}: only in the migrations" for t in sorted(set(built) - set(declared))]
    found += [f"table {t}: only in the models" for t in sorted(set(declared) - set(built))]
    for table in sorted(set(built) & set(declared)):
        for part in ("columns", "indexes", "foreign keys"):
            for item in sorted(built[table][part] - declared[table][part], key=str):
                found.append(f"{table} {part}: {item} only in the migrations")
            for item in sorted(declared[table][part] - built[table][part], key=str):
                found.append(f"{table} {part}: {item} only in the models")
    return found


def test_the_migrations_build_exactly_the_models_schema(backend, tmp_path):
    with fresh_database(backend, tmp_path, "migrated") as migrated, \
            fresh_database(backend, tmp_path, "declared") as declared:
        assert db.upgrade(migrated)
        with declared.connection_context(), declared.bind_ctx(MODELS):
            declared.create_tables(MODELS)
        built, wanted = describe(migrated), describe(declared)
    assert len(wanted) == len(MODELS)
    problems = differences(built, wanted)
    assert problems == [], "\n".join(problems)


def test_the_comparison_sees_a_missing_column_and_index():
    """The check is not a rubber stamp: a column or index present on one side only is named."""
    declared = {"payment": {"columns": {("id", "integer", False, True), ("txn_norm", "varchar", True, False)},
                            "indexes": {(("txn_norm",), True)}, "foreign keys": set()}}
    built = {"payment": {"columns": {("id", "integer", False, True)}, "indexes": set(), "foreign keys": set()}}
    assert differences(built, declared) == [
        "payment columns: ('txn_norm', 'varchar', True, False) only in the models",
        "payment indexes: (('txn_norm',), True) only in the models",
    ]
