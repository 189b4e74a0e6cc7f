"""Drop payment_request (agent_id, status) (issue 19, ingest).

No list reads it any more: an agent's requests, of one status or all, are read newest first by
(agent_id, created_at) (the requests list) or (agent_id) (the agent page's latest), paid ones by
the partial (agent_id, paid_at) of migration 0100 (the agent page's median time to pay now takes
the latest paid by paid_at through it, not the latest by id through this one), and the counts
per agent and status come from request_tally. It was one more b-tree entry to move for every request an ingested payment
sends to review (~10 at once for an ambiguous amount) and for every request paid: 5 % of a
batched payment's time at 100k open requests (bench/match.py, SQLite). bench/pages.py at 1M
requests without it: every page as fast as with it (41/41). What it still served: a COUNT of one
agent's requests of one status, which nothing runs (0.2 ms with it, 16 ms without for an agent
with 15k requests).
"""
from peewee import *  # noqa: F401,F403


def up(migrator, db):
    db.execute_sql('DROP INDEX IF EXISTS "paymentrequest_agent_id_status"')


def down(migrator, db):
    db.execute_sql('CREATE INDEX IF NOT EXISTS "paymentrequest_agent_id_status" '
                   'ON "payment_request" ("agent_id", "status")')
