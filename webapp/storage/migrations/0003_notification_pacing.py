"""Indexes for pacing: messages sent in a window, overall and per recipient."""
from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_index("notification", ("status", "sent_at"), False),
        migrator.add_index("notification", ("phone", "sent_at"), False),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_index("notification", "notification_status_sent_at"),
        migrator.drop_index("notification", "notification_phone_sent_at"),
    )
