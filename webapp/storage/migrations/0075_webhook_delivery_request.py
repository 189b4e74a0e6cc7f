"""A webhook delivery names the request it is about (indexed), for the request page; existing
deliveries get it from their dedupe key ("<event>:request:<id>…", "<event>:request:<reference>:claim:…",
"<event>:payment:<id>…:<endpoint>"), read in batches."""
from peewee import *

BATCH = 5000


def _request_id(dedupe_key: str, db) -> int | None:
    _event, kind, ident = (dedupe_key.split(":") + ["", ""])[:3]
    if kind == "request" and ident.isdigit():
        return int(ident)
    sql = {"request": 'SELECT "id" FROM "payment_request" WHERE "reference" = %s',
           "payment": 'SELECT "request_id" FROM "payment" WHERE "id" = %s'}.get(kind)
    if sql is None or (kind == "payment" and not ident.isdigit()):
        return None
    row = db.execute_sql(sql.replace("%s", db.param), [ident if kind == "request" else int(ident)]).fetchone()
    return row[0] if row else None


def up(migrator, db):
    class PaymentRequest(Model):
        class Meta:
            database = db
            table_name = "payment_request"

    migrator.migrate(migrator.add_column(
        "webhook_delivery", "request_id",
        ForeignKeyField(PaymentRequest, field=PaymentRequest.id, null=True, on_delete="SET NULL")))
    last = 0
    while True:
        rows = db.execute_sql('SELECT "id", "dedupe_key" FROM "webhook_delivery" WHERE "id" > %s ORDER BY "id" LIMIT %s'
                              .replace("%s", db.param), [last, BATCH]).fetchall()
        if not rows:
            break
        for delivery_id, dedupe_key in rows:
            request_id = _request_id(dedupe_key, db)
            if request_id is not None:
                db.execute_sql('UPDATE "webhook_delivery" SET "request_id" = %s WHERE "id" = %s AND EXISTS '
                               '(SELECT 1 FROM "payment_request" WHERE "id" = %s)'.replace("%s", db.param),
                               [request_id, delivery_id, request_id])
        last = rows[-1][0]


def down(migrator, db):
    migrator.migrate(
        migrator.drop_index("webhook_delivery", "webhook_delivery_request_id"),
        migrator.drop_column("webhook_delivery", "request_id"),
    )
