"""Drop payment (request_id): (request_id, status) leads with it (issue 19, ingest).

Every lookup it served (a request's payments: a handful of rows) is served by the longer index,
and it was one more b-tree to change for every payment decided (its request_id is set when it is
confirmed or sent to review).

Kept although a longer index leads with their columns too: payment (status), payment_request
(agent_id) and (agent_id, status). A one-column index orders its entries by id within the value,
which the longer ones do not: the API's pending verifications (payments in review, newest first),
the agent page's recent requests and its median time to pay (newest first) walk them in that
order and stop early. Dropped, they made pending verifications take 216 ms instead of 23, and the
agent page 91 ms instead of 39, at 1M rows (bench/pages.py).
"""
from peewee import *  # noqa: F401,F403


def up(migrator, db):
    db.execute_sql('DROP INDEX IF EXISTS "payment_request_id"')


def down(migrator, db):
    db.execute_sql('CREATE INDEX IF NOT EXISTS "payment_request_id" ON "payment" ("request_id")')
