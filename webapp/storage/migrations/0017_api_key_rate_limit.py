"""ApiKey.rate_limit: a key's own API rate limit (the default, PAYWATCH_API_RATE_LIMIT, when null)."""
from peewee import *


def up(migrator, db):
    migrator.migrate(migrator.add_column("api_key", "rate_limit", CharField(null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("api_key", "rate_limit"))
