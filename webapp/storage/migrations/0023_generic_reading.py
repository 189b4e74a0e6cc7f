"""Payment: read by the fallback reader (never confirmed automatically), and what it read and why."""
from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("payment", "generic", BooleanField(default=False)),
        migrator.add_column("payment", "reading", TextField(default="")),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_column("payment", "generic"),
        migrator.drop_column("payment", "reading"),
    )
