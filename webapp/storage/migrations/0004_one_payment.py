"""One transaction, one payment: comparable transaction ids, sightings, reversals kept for later.

Existing payments get their txn_norm (the provider's transaction id as compared:
letters and digits only, upper case, at least 6 characters with a digit); where
history already holds the same (currency, txn_norm, amount) twice, the later rows
keep a null txn_norm so the unique index can be built (they stay as they were).
"""
import re

from peewee import *

_NOT_ALNUM = re.compile(r"[^0-9A-Z]")


def _norm(txn):
    key = _NOT_ALNUM.sub("", (txn or "").upper())
    return key if len(key) >= 6 and any(c.isdigit() for c in key) else None


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("payment", "txn_norm", CharField(null=True)),
        migrator.add_column("payment", "provider", CharField(null=True)),
    )
    seen = set()
    rows = db.execute_sql(
        'SELECT "id", "transaction_id", "currency", "amount_minor" FROM "payment" '
        'WHERE "transaction_id" IS NOT NULL ORDER BY "id"').fetchall()
    for row_id, txn, currency, amount in rows:
        key = _norm(txn)
        if key is None or currency is None or (currency, key, amount) in seen:
            continue
        seen.add((currency, key, amount))
        db.execute_sql('UPDATE "payment" SET "txn_norm" = %s WHERE "id" = %s'.replace("%s", db.param), [key, row_id])
    migrator.migrate(
        migrator.add_index("payment", ("txn_norm",), False),
        migrator.add_index("payment", ("currency", "txn_norm", "amount_minor"), True),
    )

    class Payment(Model):
        class Meta:
            database = db
            table_name = "payment"

    class PaymentSighting(Model):
        payment = ForeignKeyField(Payment, on_delete="CASCADE")
        source = CharField()
        source_ref = CharField()
        provider = CharField(null=True)
        amount_minor = BigIntegerField(null=True)
        currency = CharField(max_length=3, null=True)
        received_at = DateTimeField()
        raw = TextField(default="")
        verified = BooleanField(default=True)
        corroborates = BooleanField(default=False)
        conflict = TextField(null=True)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "payment_sighting"
            indexes = ((("source", "source_ref"), True),)

    class Reversal(Model):
        source = CharField()
        transaction_id = CharField()
        txn_norm = CharField(index=True)
        currency = CharField(max_length=3, null=True)
        reason = TextField(default="")
        raw = TextField(default="")
        payment = ForeignKeyField(Payment, null=True, on_delete="SET NULL")
        applied_at = DateTimeField(null=True)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "reversal"
            indexes = ((("source", "txn_norm"), True),)

    db.create_tables([PaymentSighting, Reversal])


def down(migrator, db):
    db.execute_sql('DROP TABLE "reversal"')
    db.execute_sql('DROP TABLE "payment_sighting"')
    migrator.migrate(
        migrator.drop_index("payment", "payment_currency_txn_norm_amount_minor"),
        migrator.drop_index("payment", "payment_txn_norm"),
        migrator.drop_column("payment", "provider"),
        migrator.drop_column("payment", "txn_norm"),
    )
