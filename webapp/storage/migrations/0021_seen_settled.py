"""payment_request.seen_settled: first seen already settled (left out of time-to-pay figures)."""
from peewee import *


def up(migrator, db):
    migrator.migrate(migrator.add_column("payment_request", "seen_settled", BooleanField(default=False)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("payment_request", "seen_settled"))
