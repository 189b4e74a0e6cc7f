"""Saved message texts say how long a request waited in words: "{{ minutes }} min" → "{{ waited }}".

"{{ minutes }} min" read "still pending after 0 min" under a minute; `waited` reads "45 s",
"12 min", "2 h 5 min". Only that phrase is rewritten (in saved templates and reminder rules);
a text using `minutes` otherwise ("{{ minutes }} minutes") keeps it: the variable stays.
"""
import re

MINUTES = re.compile(r"\{\{\s*minutes\s*\}\}\s*min\b")
WAITED = re.compile(r"\{\{\s*waited\s*\}\}")


def _rewrite(db, table, column, pattern, new, like):
    q = db.param
    rows = db.execute_sql(f'SELECT "id", "{column}" FROM "{table}" WHERE "{column}" LIKE {q}', [like]).fetchall()
    for row_id, text in rows:
        changed = pattern.sub(new, text)
        if changed != text:
            db.execute_sql(f'UPDATE "{table}" SET "{column}" = {q} WHERE "id" = {q}', [changed, row_id])


def up(migrator, db):
    for table, column in (("template", "body"), ("rule", "template")):
        _rewrite(db, table, column, MINUTES, "{{ waited }}", "%minutes%")


def down(migrator, db):
    for table, column in (("template", "body"), ("rule", "template")):
        _rewrite(db, table, column, WAITED, "{{ minutes }} min", "%waited%")
