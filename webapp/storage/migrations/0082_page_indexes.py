"""Indexes the staff pages need over a million rows (issue 19): the review queue walks
(status, received_at, id) per status, a source's payments page by (source, received_at, id) (the list is newest first by received_at), a status's or an agent's requests by (status | agent, created_at), the fees summary by due_at, a phone typed in
the search finds the sender by sender_phone, and the dashboard's collections and slow payers read
paid requests by (status, paid_at)."""
from peewee import *  # noqa: F401,F403


def up(migrator, db):
    migrator.migrate(
        migrator.add_index("payment", ("status", "received_at", "id"), False),
        migrator.add_index("payment", ("source", "received_at", "id"), False),
        migrator.add_index("payment", ("sender_phone",), False),
        migrator.add_index("payment_request", ("status", "paid_at"), False),
        migrator.add_index("payment_request", ("status", "created_at"), False),
        migrator.add_index("payment_request", ("agent_id", "created_at"), False),
        migrator.add_index("payment_request", ("due_at",), False),
        migrator.add_index("payment_request", ("agent_id", "status", "paid_at"), False),
        migrator.add_index("payment_request", ("expires_at", "id"), False),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_index("payment", "payment_status_received_at_id"),
        migrator.drop_index("payment", "payment_source_received_at_id"),
        migrator.drop_index("payment", "payment_sender_phone"),
        migrator.drop_index("payment_request", "payment_request_status_paid_at"),
        migrator.drop_index("payment_request", "payment_request_status_created_at"),
        migrator.drop_index("payment_request", "payment_request_agent_id_created_at"),
        migrator.drop_index("payment_request", "payment_request_due_at"),
        migrator.drop_index("payment_request", "payment_request_agent_id_status_paid_at"),
        migrator.drop_index("payment_request", "payment_request_expires_at_id"),
    )
