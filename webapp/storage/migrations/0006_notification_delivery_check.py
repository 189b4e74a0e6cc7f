"""Notification: what a later run needs to check the chat before re-sending after an unknown outcome."""
from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("notification", "unconfirmed_since", DateTimeField(null=True)),
        migrator.add_column("notification", "checks", IntegerField(default=0)),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_column("notification", "unconfirmed_since"),
        migrator.drop_column("notification", "checks"),
    )
