"""The notifications log is newest first by when a message is due: an index on due_at serves its pages."""
from peewee import *


def up(migrator, db):
    migrator.migrate(migrator.add_index("notification", ("due_at",), False))


def down(migrator, db):
    migrator.migrate(migrator.drop_index("notification", "notification_due_at"))
