"""The request tally behind the dashboard's agent × status matrix and the agent page: exact after
every kind of write (ledger, plain updates, deletes, an agent deleted), and after folding."""
from collections import defaultdict
from datetime import timedelta

from peewee import fn

from webapp.domain import ledger, reports
from webapp.storage import db
from webapp.storage.models import Agent, PaymentRequest, RequestTally, utcnow


def counted() -> dict:
    """What COUNT(*) over the requests says, in request_counts' shape."""
    found: dict = defaultdict(dict)
    for agent, status, n in (PaymentRequest.select(PaymentRequest.agent, PaymentRequest.status, fn.COUNT(PaymentRequest.id))
                             .group_by(PaymentRequest.agent, PaymentRequest.status).tuples()):
        found[agent][status] = n
    return dict(found)


def test_the_tally_equals_a_count_after_every_kind_of_write(domain):
    def scenario():
        with db.transaction():
            one = Agent.create(name="One", code="T1")
            two = Agent.create(name="Two", code="T2")
        made = [ledger.create_request(ledger.NewRequest(amount_minor=1000 + i, currency="UGX",
                                                        agent_id=one.id if i % 2 else None, source="ui"),
                                      actor="test") for i in range(6)]
        assert dict(reports.request_counts(every_agent=True)) == counted()
        ledger.cancel_request(made[0].reference, actor="test", reason="test")
        with db.transaction():
            PaymentRequest.update(status="expired", ended_at=utcnow()).where(PaymentRequest.id == made[1].id).execute()
            PaymentRequest.update(agent=two.id).where(PaymentRequest.id.in_([made[2].id, made[3].id])).execute()
            PaymentRequest.update(customer_name="only the name").where(PaymentRequest.id == made[4].id).execute()
            PaymentRequest.delete().where(PaymentRequest.id == made[5].id).execute()
        assert dict(reports.request_counts(every_agent=True)) == counted()
        with db.transaction():
            Agent.delete().where(Agent.id == two.id).execute()  # its requests lose their agent (SET NULL)
        assert dict(reports.request_counts(every_agent=True)) == counted()
        assert reports.request_counts(one.id) == {one.id: counted()[one.id]}
        rows_before = RequestTally.select().count()
        reports.fold_tally()
        assert RequestTally.select().count() < rows_before
        assert dict(reports.request_counts(every_agent=True)) == counted()
        matrix = {row.agent.code if row.agent else None: {k: v for k, v in row.counts.items() if v}
                  for row in reports.agent_status_matrix()}
        assert matrix == {"T1": counted()[one.id], None: counted()[None]}

    domain(scenario)


def test_many_changes_are_folded_when_the_dashboard_reads(domain):
    def scenario():
        now = utcnow()
        with db.transaction():
            PaymentRequest.insert_many([
                {"reference": f"PW-TF{i:04d}", "amount_minor": 1000, "requested_minor": 1000, "currency": "UGX",
                 "expires_at": now + timedelta(hours=1)} for i in range(1500)]).execute()
            PaymentRequest.update(status="expired").where(PaymentRequest.reference.startswith("PW-TF")).execute()
        assert RequestTally.select().count() >= 4500  # +1 each, then −1 and +1 each
        assert dict(reports.request_counts(every_agent=True)) == counted()
        assert RequestTally.select().count() <= 10  # folded for the next read
        assert dict(reports.request_counts(every_agent=True)) == counted()

    domain(scenario)
