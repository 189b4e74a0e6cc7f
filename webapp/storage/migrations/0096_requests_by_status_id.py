"""(status, id) on payment_request (issue 19): the API lists requests of one status newest first by id
(`/api/v1/requests?status=`, `/api/v1/admin/pending-verifications`); without it SQLite walks every
request in id order looking for the few in review."""
from peewee import *  # noqa: F401,F403


def up(migrator, db):
    migrator.migrate(migrator.add_index("payment_request", ("status", "id"), False))


def down(migrator, db):
    migrator.migrate(migrator.drop_index("payment_request", "payment_request_status_id"))
