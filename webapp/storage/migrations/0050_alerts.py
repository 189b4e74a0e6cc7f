"""Operators' alerts: Alert (one row per episode) and AlertMail (the e-mail outbox)."""
from peewee import *


def up(migrator, db):
    class Alert(Model):
        kind = CharField(index=True)
        key = CharField()
        text = TextField()
        open_key = CharField(null=True, unique=True)
        opened_at = DateTimeField(index=True)
        closed_at = DateTimeField(null=True)
        all_clear = BooleanField(default=True)

        class Meta:
            database = db
            table_name = "alert"

    class AlertMail(Model):
        alert = ForeignKeyField(Alert, null=True, on_delete="SET NULL")
        to = TextField()
        subject = CharField()
        body = TextField()
        status = CharField(default="pending")
        attempts = IntegerField(default=0)
        last_error = TextField(null=True)
        dedupe_key = CharField(unique=True)
        created_at = DateTimeField()
        sent_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "alert_mail"
            indexes = ((("status", "created_at"), False),)

    db.create_tables([Alert, AlertMail])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("alert_mail"), migrator.drop_table("alert"))
