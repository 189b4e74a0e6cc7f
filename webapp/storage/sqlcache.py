"""Hot statements written once per database dialect instead of rebuilt by peewee per call.

Profiling ingest (bench/match.py) showed peewee building SQL strings taking about
60 % of the time of a payment. The statements on that path are fixed in shape, so
they are built once here and executed with fresh parameters; values still go
through each field's db_value (UTC times, JSON), so what is stored is identical
to Model.create / Model.insert.
"""
from __future__ import annotations

import itertools
import re
import sqlite3
import weakref
from typing import Any

from peewee import CharField, DatabaseError, Model, NotSupportedError, PostgresqlDatabase, SqliteDatabase, TextField

from webapp.storage.db import database

_statements: dict[tuple, str] = {}


def _sql(key: tuple, build) -> str:
    full_key = (type(database.obj).__name__, database.obj.param, *key)
    sql = _statements.get(full_key)
    if sql is None:
        sql = _statements[full_key] = build(database.obj.param)
    return sql


# PostgreSQL plans a statement sent as text every time it runs: for the ledger's UNION
# lookups that is a good part of the statement's cost (0.2-0.5 ms). On PostgreSQL these
# statements are PREPAREd once per connection and EXECUTEd after (the server keeps the
# plan; after five runs it may switch to a generic plan when that costs no more).
# SQLite's driver keeps its own cache of prepared statements. PAYWATCH_PG_PREPARE=off (behind
# PgBouncer's transaction pooling) runs them as text.
_names: dict[str, int] = {}  # statement text -> its number (one per text, whatever the thread)
_numbers = itertools.count(1)
_unpreparable: set[str] = set()  # statements PostgreSQL would not prepare (run as text)
# connection -> [generation, numbers prepared on it]; a new generation gives new names
_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_MARK = re.compile(r"%%|%s")


def _execute(sql: str, params: list[Any]):
    """database.execute_sql(sql, params), through a prepared statement on PostgreSQL."""
    target = database.obj
    if not isinstance(target, PostgresqlDatabase) or sql in _unpreparable \
            or not getattr(target, "prepare_statements", True):
        return database.execute_sql(sql, params)
    number = _names.get(sql) or _names.setdefault(sql, next(_numbers))
    connection = database.connection()
    state = _prepared.get(connection)
    if state is None:
        state = _prepared[connection] = [0, set()]
    name = f"pw_{state[0]}_{number}"
    if number not in state[1]:
        counter = iter(range(1, len(params) + 1))
        text = _MARK.sub(lambda m: "%" if m.group() == "%%" else f"${next(counter)}", sql)
        try:
            with database.atomic():  # a savepoint: a refusal must not end the caller's transaction
                database.execute_sql(f"PREPARE {name} AS {text}")
        except DatabaseError:  # e.g. a parameter whose type PostgreSQL cannot infer: run it as text
            _unpreparable.add(sql)
            return database.execute_sql(sql, params)
        state[1].add(number)
    marks = ", ".join("%s" for _ in params)
    try:
        return database.execute_sql(f"EXECUTE {name}({marks})" if params else f"EXECUTE {name}", params)
    except NotSupportedError:
        # "cached plan must not change result type": a migration changed a table under this
        # connection. This run fails (with its transaction); the next prepares under new names.
        state[0], state[1] = state[0] + 1, set()
        raise


_EXECUTED = re.compile(r"EXECUTE pw_\d+_(\d+)")


def statement_of(sql: str) -> str:
    """The statement text an `EXECUTE pw_…` of _execute() runs; any other `sql` as it is."""
    found = _EXECUTED.match(sql)
    if found:
        number = int(found.group(1))
        return next((text for text, n in list(_names.items()) if n == number), sql)
    return sql


def _table(model: type[Model]) -> str:
    return f'"{model._meta.table_name}"'


def _row(model: type[Model], values: dict[str, Any]) -> dict[str, Any]:
    """`values` with the defaults filled in like Model.create (every column but the id, unless
    `values` gives it: next_ids())."""
    row = {}
    for name, field in model._meta.fields.items():
        if name == "id":
            if values.get("id") is not None:
                row[name] = values[name]
            continue
        if name in values:
            row[name] = values[name]
        elif field.default is not None:
            row[name] = field.default() if callable(field.default) else field.default
        elif not field.null:
            raise ValueError(f"{model.__name__}.{name} is required")
        else:
            row[name] = None
    return row


def contains(text_sql: str, param: str) -> str:
    """SQL that is true when the text `text_sql` contains the bound text `param`, as LIKE '%…%'
    on text with no wildcard or letter case in it, but without LIKE: SQLite prepares a statement
    again for every new value bound to a LIKE pattern (the LIKE optimisation), ~0.1 ms each time."""
    if isinstance(database.obj, SqliteDatabase):
        return f"instr({text_sql}, {param}) > 0"
    return f"strpos({text_sql}, {param}) > 0"


def padded(values: list) -> list:
    """`values` (not empty) padded to a power of two by repeating the last: a statement with
    `IN (…)` over them then has a few shapes (1, 2, 4 … marks), each built and prepared once,
    instead of one per count. A value repeated in IN changes nothing."""
    size = 1 << (len(values) - 1).bit_length()
    return list(values) + [values[-1]] * (size - len(values))


def marks(values: list, param: str) -> str:
    """"?, ?, ?" (or "%s, …"): one parameter mark per value."""
    return ", ".join([param] * len(values))


def returning() -> bool:
    """The database answers RETURNING (PostgreSQL; SQLite from 3.35, which peewee does not assume)."""
    if database.obj.returning_clause:
        return True
    return sqlite3.sqlite_version_info >= (3, 35) if isinstance(database.obj, SqliteDatabase) else False


def insert(model: type[Model], values: dict[str, Any], *, ignore_conflict: bool = False) -> int | None:
    """INSERT one row of `model` (defaults filled in like Model.create).

    Returns the new id; with `ignore_conflict`, None when a unique key already held the row.
    """
    fields = model._meta.fields
    row = _row(model, values)
    names = tuple(row)
    returning = database.obj.returning_clause

    def build(param: str) -> str:
        columns = ", ".join(f'"{fields[n].column_name}"' for n in names)
        marks = ", ".join(param for _ in names)
        conflict = " ON CONFLICT DO NOTHING" if ignore_conflict else ""
        tail = ' RETURNING "id"' if returning else ""
        return f"INSERT INTO {_table(model)} ({columns}) VALUES ({marks}){conflict}{tail}"

    sql = _sql(("insert", model.__name__, names, ignore_conflict), build)
    params = [fields[n].db_value(row[n]) for n in names]
    cursor = _execute(sql, params)
    if returning:
        found = cursor.fetchone()
        return found[0] if found else None
    if ignore_conflict and cursor.rowcount == 0:
        return None
    return cursor.lastrowid


def next_ids(model: type[Model], count: int) -> list[int]:
    """`count` ids for rows of `model` to be inserted later in this transaction (insert() with
    "id"): on PostgreSQL from the table's sequence (one statement for all; unused ones are a gap,
    as after any rollback); on SQLite those after the largest, which is safe only because a
    transaction here holds SQLite's write lock from its BEGIN (db.transaction) and every
    row it inserts meanwhile takes one of them."""
    if isinstance(database.obj, PostgresqlDatabase):
        table = model._meta.table_name
        rows = _execute(_sql(("next_ids", model.__name__), lambda p: (
            f"SELECT nextval(pg_get_serial_sequence('\"{table}\"', 'id')) FROM generate_series(1, {p})")),
            [count]).fetchall()
        return [row[0] for row in rows]
    sql = _sql(("max_id", model.__name__), lambda p: f'SELECT MAX("id") FROM {_table(model)}')
    top = _execute(sql, []).fetchone()[0]
    return list(range((top or 0) + 1, (top or 0) + 1 + count))


MANY_ROWS = 200  # rows per multi-row INSERT (SQLite allows 32,766 parameters per statement)


def insert_many(model: type[Model], rows: list[dict[str, Any]], *, ignore_conflict: bool = False,
                returning_key: str | None = None) -> dict[Any, int] | None:
    """INSERT many rows of `model` in one statement (per MANY_ROWS), defaults filled in as insert().

    Every row names the same fields. With `returning_key` (and a database that answers
    RETURNING), returns {row[returning_key]: new id} for the rows actually inserted (with
    `ignore_conflict`, those a unique key did not already hold); else None.
    """
    if not rows:
        return {} if returning_key else None
    fields = model._meta.fields
    full = [_row(model, values) for values in rows]
    names = tuple(full[0])
    back = returning_key is not None and returning()
    found: dict[Any, int] = {}
    for start in range(0, len(full), MANY_ROWS):
        chunk = full[start:start + MANY_ROWS]

        def build(param: str, count: int = len(chunk)) -> str:
            columns = ", ".join(f'"{fields[n].column_name}"' for n in names)
            one = "(" + ", ".join(param for _ in names) + ")"
            conflict = " ON CONFLICT DO NOTHING" if ignore_conflict else ""
            tail = f' RETURNING "id", "{fields[returning_key].column_name}"' if back else ""
            return f"INSERT INTO {_table(model)} ({columns}) VALUES {', '.join([one] * count)}{conflict}{tail}"

        sql = _sql(("insert_many", model.__name__, names, len(chunk), ignore_conflict, back), build)
        params = [fields[n].db_value(row[n]) for row in chunk for n in names]
        cursor = _execute(sql, params)
        if back:
            found.update((key, new_id) for new_id, key in cursor.fetchall())
    if returning_key is None:
        return None
    if back:
        return found
    # No RETURNING (an old SQLite): read the ids back by their key.
    keys = [row[returning_key] for row in full]
    column = fields[returning_key]
    return {getattr(r, returning_key): r.id for r in model.select(model.id, column).where(column.in_(keys))}


_readers: dict[tuple, list[tuple[str, bool, Any]]] = {}


def _reader(model: type[Model], key: tuple, description) -> list[tuple[str, bool, Any]]:
    """Per column of a result: (name, is a field, python_value or None), resolved once per statement
    as peewee's ModelRaw resolves them per execution (a column of the model sets that field; any
    other column, an alias such as "found_by", becomes a plain attribute)."""
    columns = tuple(d[0] for d in description)
    found = _readers.get((key, columns))
    if found is None:
        combined = model._meta.combined
        found = []
        for column in columns:
            name = column[column.rfind(".") + 1:].strip('()"`')
            field = combined.get(name)
            found.append((field.name, True, field.python_value) if field is not None else (name, False, None))
        _readers[(key, columns)] = found
    return found


def select(model: type[Model], name: str, build, params: list[Any]) -> list[Model]:
    """Model rows from a SELECT built once by `build(param_marker)` (cached under `name`).

    The rows are what ModelRaw would give (fields converted by their python_value, other
    columns as attributes), built without peewee's per-execution query and column machinery:
    the ledger's hot path reads a row or two per statement, many times a second."""
    key = ("select", model.__name__, name)
    cursor = _execute(_sql(key, build), params)
    rows = cursor.fetchall()
    if not rows:
        return []
    reader = _reader(model, key, cursor.description)
    result = []
    for row in rows:
        instance = model(__no_default__=1)
        data = instance.__data__
        for (column, is_field, convert), value in zip(reader, row):
            if is_field:
                data[column] = convert(value)
            else:
                setattr(instance, column, value)
        result.append(instance)
    return result


def tuples(name: str, build, params: list[Any]) -> list[tuple]:
    """The raw rows (database values, no conversion) of a SELECT built once by `build(param_marker)`."""
    return _execute(_sql(("tuples", name), build), params).fetchall()


def by_id(model: type[Model], row_id: int):
    """The row of `model` with this id (DoesNotExist when there is none), like get_by_id."""
    rows = select(model, "by_id", lambda p: f'SELECT * FROM {_table(model)} WHERE "id" = {p}', [row_id])
    for row in rows:
        return row
    raise model.DoesNotExist(f"{model.__name__} {row_id} does not exist")


def _where(model: type[Model], where: dict[str, Any], param: str) -> str:
    fields = model._meta.fields
    parts = []
    for name, value in where.items():
        column = f'"{fields[name].column_name}"'
        if isinstance(value, (tuple, list, set, frozenset)):
            parts.append(f"{column} IN ({', '.join(param for _ in value)})")
        else:
            parts.append(f"{column} = {param}")
    return " AND ".join(parts)


def _where_shape(where: dict[str, Any]) -> tuple:
    return tuple((k, len(v) if isinstance(v, (tuple, list, set, frozenset)) else None) for k, v in where.items())


def _where_params(model: type[Model], where: dict[str, Any]) -> list[Any]:
    fields = model._meta.fields
    params: list[Any] = []
    for name, value in where.items():
        values = value if isinstance(value, (tuple, list, set, frozenset)) else (value,)
        params.extend(fields[name].db_value(v) for v in values)
    return params


def update(model: type[Model], values: dict[str, Any], where: dict[str, Any]) -> int:
    """UPDATE `model` SET values WHERE each key equals its value (or is IN a tuple); returns the row count.

    The compare-and-set of the ledger: `where` names the status the row must still have.
    """
    fields = model._meta.fields
    names = tuple(values)

    def build(param: str) -> str:
        sets = ", ".join(f'"{fields[n].column_name}" = {param}' for n in names)
        return f"UPDATE {_table(model)} SET {sets} WHERE {_where(model, where, param)}"

    sql = _sql(("update", model.__name__, names, _where_shape(where)), build)
    params = [fields[n].db_value(values[n]) for n in names] + _where_params(model, where)
    return _execute(sql, params).rowcount


def update_returning_row(model: type[Model], values: dict[str, Any], where: dict[str, Any],
                         also: tuple[tuple[str, str], ...] = ()):
    """update() of one row (`where` names its id) that gives back the row as written (RETURNING *),
    or None when no row matched. `also`: (name, SQL expression, fixed text) pairs returned with it,
    set on the row as attributes (a subquery about the row saves a statement). Only where
    returning() is true."""
    fields = model._meta.fields
    names = tuple(values)

    def build(param: str) -> str:
        sets = ", ".join(f'"{fields[n].column_name}" = {param}' for n in names)
        extra = "".join(f', ({sql}) AS "{name}"' for name, sql in also)
        return f"UPDATE {_table(model)} SET {sets} WHERE {_where(model, where, param)} RETURNING *{extra}"

    key = ("update_row", model.__name__, names, _where_shape(where), also)
    cursor = _execute(_sql(key, build), [fields[n].db_value(values[n]) for n in names] + _where_params(model, where))
    row = cursor.fetchone()
    if row is None:
        return None
    instance = model(__no_default__=1)
    for (column, is_field, convert), value in zip(_reader(model, key, cursor.description), row):
        if is_field:
            instance.__data__[column] = convert(value)
        else:
            setattr(instance, column, value)
    return instance


def update_returning_ids(model: type[Model], values: dict[str, Any], where: dict[str, Any]) -> list[int]:
    """update() for a set of rows in one statement (`where["id"]` a tuple of ids); returns the
    ids of the rows it changed, sorted.

    The other tests in `where` (the status a compare-and-set expects) are written so that no
    index can serve them (`+"status"` on SQLite, `"status" || ''` on PostgreSQL: text columns
    only): the rows are then found by their primary key whatever the planner's statistics say
    (a bulk load without ANALYZE made PostgreSQL walk the (status, expires_at) index, 2.5 ms).
    """
    fields = model._meta.fields
    names = tuple(values)
    sqlite = isinstance(database.obj, SqliteDatabase)
    back = returning()

    def build(param: str) -> str:
        sets = ", ".join(f'"{fields[n].column_name}" = {param}' for n in names)
        where_sql = _where(model, where, param)
        for name in where:
            if name != "id" and isinstance(fields[name], (CharField, TextField)):
                column = f'"{fields[name].column_name}"'
                where_sql = where_sql.replace(f"{column} ", f"+{column} " if sqlite else f"({column} || '') ")
        tail = ' RETURNING "id"' if back else ""
        return f"UPDATE {_table(model)} SET {sets} WHERE {where_sql}{tail}"

    if not back:  # an old SQLite: one compare-and-set per id
        return [i for i in sorted(where["id"]) if update(model, values, {**where, "id": i})]
    sql = _sql(("update_ids", model.__name__, names, _where_shape(where)), build)
    params = [fields[n].db_value(values[n]) for n in names] + _where_params(model, where)
    return sorted(row[0] for row in _execute(sql, params).fetchall())


def delete(model: type[Model], where: dict[str, Any]) -> int:
    """DELETE FROM `model` WHERE … (as in update()); returns the row count."""
    sql = _sql(("delete", model.__name__, _where_shape(where)),
               lambda p: f"DELETE FROM {_table(model)} WHERE {_where(model, where, p)}")
    return _execute(sql, _where_params(model, where)).rowcount
