"""Billing-database sources: the rows registered as requests, and the write-back outbox."""
from peewee import *


def up(migrator, db):
    class Source(Model):
        class Meta:
            database = db
            table_name = "source"

    class PaymentRequest(Model):
        class Meta:
            database = db
            table_name = "payment_request"

    class BillingRow(Model):
        source = ForeignKeyField(Source, on_delete="CASCADE")
        table_name = CharField()
        row_id = CharField()
        request = ForeignKeyField(PaymentRequest, unique=True, on_delete="CASCADE")
        status_seen = CharField()
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "billing_row"
            indexes = ((("source", "table_name", "row_id"), True),)

    class BillingWriteback(Model):
        row = ForeignKeyField(BillingRow, on_delete="CASCADE")
        request = ForeignKeyField(PaymentRequest, on_delete="CASCADE")
        outcome = CharField()
        expected = CharField()
        status = CharField(default="pending")
        written = CharField(null=True)
        voucher_code = CharField(null=True)
        attempts = IntegerField(default=0)
        last_error = TextField(null=True)
        next_attempt_at = DateTimeField()
        done_at = DateTimeField(null=True)
        dedupe_key = CharField(unique=True)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "billing_writeback"
            indexes = ((("status", "next_attempt_at"), False),)

    db.create_tables([BillingRow, BillingWriteback])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("billing_writeback"), migrator.drop_table("billing_row"))
