"""Outbound webhooks: the endpoint and delivery tables (empty until now) rebuilt, and an attempt log."""
from peewee import *


def up(migrator, db):
    migrator.migrate(migrator.drop_table("webhook_delivery"), migrator.drop_table("webhook_endpoint"))

    class WebhookEndpoint(Model):
        url = CharField()
        secret = CharField()
        events = TextField(default=list)
        is_active = BooleanField(default=True)
        description = CharField(default="")
        previous_secret = CharField(null=True)
        previous_secret_until = DateTimeField(null=True)
        failing_since = DateTimeField(null=True)
        disabled_reason = CharField(null=True)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "webhook_endpoint"

    class WebhookDelivery(Model):
        endpoint = ForeignKeyField(WebhookEndpoint, on_delete="CASCADE")
        event = CharField()
        event_id = CharField(index=True)
        payload = TextField(default=dict)
        status = CharField(default="pending")
        attempts = IntegerField(default=0)
        next_attempt_at = DateTimeField()
        last_status = IntegerField(null=True)
        last_error = CharField(null=True)
        claimed_at = DateTimeField(null=True)
        delivered_at = DateTimeField(null=True)
        dedupe_key = CharField(unique=True)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "webhook_delivery"
            indexes = ((("status", "next_attempt_at"), False), (("endpoint", "created_at"), False))

    class WebhookAttempt(Model):
        delivery = ForeignKeyField(WebhookDelivery, on_delete="CASCADE")
        at = DateTimeField()
        status_code = IntegerField(null=True)
        error = CharField(null=True)
        response_excerpt = TextField(default="")
        duration_ms = IntegerField(default=0)

        class Meta:
            database = db
            table_name = "webhook_attempt"

    db.create_tables([WebhookEndpoint, WebhookDelivery, WebhookAttempt])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("webhook_attempt"), migrator.drop_table("webhook_delivery"),
                     migrator.drop_table("webhook_endpoint"))

    class WebhookEndpoint(Model):
        url = CharField()
        secret = CharField()
        events = TextField(default=list)
        is_active = BooleanField(default=True)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "webhook_endpoint"

    class WebhookDelivery(Model):
        endpoint = ForeignKeyField(WebhookEndpoint, on_delete="CASCADE")
        event = CharField()
        payload = TextField(default=dict)
        status = CharField(default="pending")
        attempts = IntegerField(default=0)
        next_attempt_at = DateTimeField()
        last_status = IntegerField(null=True)
        dedupe_key = CharField(unique=True)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "webhook_delivery"
            indexes = ((("status", "next_attempt_at"), False),)

    db.create_tables([WebhookEndpoint, WebhookDelivery])
