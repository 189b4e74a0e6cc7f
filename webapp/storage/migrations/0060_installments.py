"""Fees and invoices: the payer roster; requests with a due date, installments and a paid total."""
from peewee import *


def up(migrator, db):
    class Payer(Model):
        code = CharField(unique=True)
        name = CharField()
        group = CharField(default="", index=True)
        phones = TextField(default="[]")
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "payer"

    db.create_tables([Payer])
    migrator.migrate(
        migrator.add_column("payment_request", "due_at", DateTimeField(null=True)),
        migrator.add_column("payment_request", "allow_partial", BooleanField(default=False)),
        migrator.add_column("payment_request", "paid_minor", BigIntegerField(default=0)),
        migrator.add_column("payment_request", "payer_id",
                            ForeignKeyField(Payer, field=Payer.id, null=True, on_delete="SET NULL")),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_index("payment_request", "payment_request_payer_id"),
        migrator.drop_column("payment_request", "payer_id"),
        migrator.drop_column("payment_request", "paid_minor"),
        migrator.drop_column("payment_request", "allow_partial"),
        migrator.drop_column("payment_request", "due_at"),
    )
    migrator.migrate(migrator.drop_table("payer"))
