"""Candidate requests per payment while staff review (a frozen copy of MatchCandidate)."""
from peewee import *


def up(migrator, db):
    class Payment(Model):
        class Meta:
            database = db
            table_name = "payment"

    class PaymentRequest(Model):
        class Meta:
            database = db
            table_name = "payment_request"

    class MatchCandidate(Model):
        payment = ForeignKeyField(Payment, on_delete="CASCADE")
        request = ForeignKeyField(PaymentRequest, on_delete="CASCADE")
        score = IntegerField()
        evidence = TextField()
        late = BooleanField(default=False)
        mismatch = TextField(null=True)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "match_candidate"
            indexes = ((("payment", "request"), True), (("request",), False))

    db.create_tables([MatchCandidate])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("match_candidate"))
