"""SMS posted to POST /hooks/sms/<source>: stored before they are read (jobs/sms.py)."""
from peewee import *


def up(migrator, db):
    class InboundSms(Model):
        source = CharField()
        ref = CharField()
        format = CharField()
        sender = CharField(default="")
        text = TextField(default="")
        received_at = DateTimeField(null=True)
        raw = TextField(default="")
        status = CharField(default="new")
        outcome = CharField(null=True)
        payment_id = IntegerField(null=True)
        created_at = DateTimeField()
        processed_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "inbound_sms"
            indexes = (
                (("source", "ref"), True),
                (("status", "created_at"), False),
            )

    db.create_tables([InboundSms])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("inbound_sms"))
