"""The public payment page: every request gets an unguessable pay_token (existing ones too),
and customers' "I've paid" claims get their table."""
import secrets

from peewee import *


def up(migrator, db):
    migrator.migrate(migrator.add_column("payment_request", "pay_token", CharField(null=True)))
    ids = [row[0] for row in db.execute_sql('SELECT "id" FROM "payment_request" WHERE "pay_token" IS NULL').fetchall()]
    for request_id in ids:
        db.execute_sql('UPDATE "payment_request" SET "pay_token" = %s WHERE "id" = %s'.replace("%s", db.param),
                       [secrets.token_urlsafe(24), request_id])
    migrator.migrate(
        migrator.add_not_null("payment_request", "pay_token"),
        migrator.add_index("payment_request", ("pay_token",), True),
    )

    class PaymentRequest(Model):
        class Meta:
            database = db
            table_name = "payment_request"

    class Payment(Model):
        class Meta:
            database = db
            table_name = "payment"

    class Claim(Model):
        request = ForeignKeyField(PaymentRequest, on_delete="CASCADE")
        transaction_id = CharField()
        txn_norm = CharField(null=True, index=True)
        phone = CharField(null=True)
        status = CharField(default="review")
        payment = ForeignKeyField(Payment, null=True, on_delete="SET NULL")
        evidence = TextField(default="[]")
        client_ip = CharField(null=True)
        created_at = DateTimeField()
        checked_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "claim"
            indexes = ((("request", "status"), False), (("status", "created_at"), False))

    db.create_tables([Claim])


def down(migrator, db):
    db.execute_sql('DROP TABLE "claim"')
    migrator.migrate(
        migrator.drop_index("payment_request", "payment_request_pay_token"),
        migrator.drop_column("payment_request", "pay_token"),
    )
