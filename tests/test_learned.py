"""Learning from staff: confirms and links teach payer aliases, a reject withdraws one, staff edit them."""
import pytest

from tests.ledger_helpers import actions, new_request, pay
from webapp.domain import learned, ledger, options
from webapp.storage.models import PayerAlias

JOHN = ("John Bosco Ocen", "+256772000001")
PETER = ("Peter Lwanga", "+256772000002")


def round_(payer="OKOT JAMES", phone=None, amount=5000):
    """John and Peter each owe `amount`; a payment from `payer` arrives."""
    john = new_request(amount, name=JOHN[0], phone=JOHN[1])
    peter = new_request(amount, name=PETER[0], phone=PETER[1])
    return john, peter, pay(amount, name=payer, phone=phone).payment


def test_an_alias_confirmed_twice_by_staff_confirms_the_third_payment_itself(ctx):
    for count in (1, 2):
        john, _, payment = round_()
        assert payment.status == "review", payment.reason
        ledger.confirm(payment.id, john.reference, actor="user:1")
        alias = PayerAlias.get(PayerAlias.kind == "name")
        assert (alias.alias, alias.customer, alias.confirmed) == ("james okot", "phone:+256772000001", count)
    john, _, payment = round_()
    assert payment.status == "confirmed" and payment.request_id == john.id
    detail = next(e["detail"] for e in payment.evidence if e["signal"] == "learned_name")
    assert "2 times" in detail
    assert actions(f"payer_alias:{alias.id}") == ["payer_alias.confirmed"] * 2


def test_one_rejection_withdraws_a_decisive_alias(ctx):
    for _ in range(2):
        john, _, payment = round_()
        ledger.confirm(payment.id, john.reference, actor="user:1")
    # John owes twice the same amount: a tie, so staff decide, and reject one pair.
    first = new_request(7000, name=JOHN[0], phone=JOHN[1])
    new_request(7000, name=JOHN[0], phone=JOHN[1])
    payment = pay(7000, name="OKOT JAMES").payment
    assert payment.status == "review"
    ledger.reject(payment.id, first.reference, "paid for his brother", actor="user:1")
    alias = PayerAlias.get(PayerAlias.kind == "name")
    assert (alias.confirmed, alias.rejected) == (2, 1)
    assert learned.status(alias, 2) == "withdrawn"
    john, _, payment = round_(amount=9000)
    assert payment.status == "review"
    evidence = {e["signal"]: e for e in payment.evidence}
    assert evidence["learned_name"]["points"] == 0
    assert "withdrawn" in evidence["learned_name"]["detail"]
    learned.edit(alias.id, "restore", actor="user:1")
    john, _, payment = round_(amount=11000)
    assert payment.status == "confirmed" and payment.request_id == john.id


def test_a_rejected_name_is_never_suggested_again_for_that_customer(ctx):
    options.update({"verification_mode": "manual"}, actor="user:1")
    mary = new_request(5000, name="Mary Wanjiru Karanja", phone="+254712000001")
    payment = pay(5000, name="M W KARANJA").payment
    ledger.reject(payment.id, mary.reference, "another Karanja", actor="user:1")
    options.update({"verification_mode": "hybrid"}, actor="user:1")
    mary = new_request(6000, name="Mary Wanjiru Karanja", phone="+254712000001")
    payment = pay(6000, name="M W KARANJA").payment
    assert payment.status == "review"  # the amount alone is left
    evidence = {e["signal"]: e for e in payment.evidence}
    assert evidence["name"]["points"] == 0 and "staff said" in evidence["name"]["detail"]
    # Another customer of that name is not affected.
    new_request(8000, name="Mercy Wambui Karanja", phone="+254712000003")
    assert pay(8000, name="M W KARANJA").payment.status == "confirmed"


def test_a_phone_seen_paying_for_a_customer_is_learned_too(ctx):
    parent = "+256701999999"
    for _ in range(2):
        john, _, payment = round_(payer="", phone=parent)
        assert payment.status == "review"
        ledger.confirm(payment.id, john.reference, actor="user:1")
    alias = PayerAlias.get(PayerAlias.kind == "phone")
    assert (alias.alias, alias.confirmed, alias.rejected) == (parent, 2, 0)
    john, _, payment = round_(payer="", phone=parent)
    assert payment.status == "confirmed" and payment.request_id == john.id


def test_an_alias_confirmed_for_two_customers_decides_nothing(ctx):
    for customer in (JOHN, PETER, JOHN, PETER):
        john, peter, payment = round_(payer="MOBILE MONEY")
        target = john if customer is JOHN else peter
        ledger.confirm(payment.id, target.reference, actor="user:1")
    _, _, payment = round_(payer="MOBILE MONEY")
    assert payment.status == "review"


def test_the_customers_own_name_and_phone_teach_nothing(ctx):
    john, _, payment = round_(payer="Ocen John Bosco", phone=None)
    if payment.status == "review":
        ledger.confirm(payment.id, john.reference, actor="user:1")
    assert PayerAlias.select().count() == 0


def test_learn_after_is_a_run_time_option(ctx):
    options.update({"learn_after": 1}, actor="user:1")
    john, _, payment = round_()
    ledger.confirm(payment.id, john.reference, actor="user:1")
    john, _, payment = round_()
    assert payment.status == "confirmed"


def test_edits_are_checked_and_audited(ctx):
    john, _, payment = round_()
    ledger.confirm(payment.id, john.reference, actor="user:1")
    alias = PayerAlias.get()
    with pytest.raises(learned.LearnedError, match="edit must be one of"):
        learned.edit(alias.id, "promote", actor="user:1")
    with pytest.raises(learned.LearnedError, match="no learned payer alias"):
        learned.edit(alias.id + 99, "forget", actor="user:1")
    assert learned.edit(alias.id, "withdraw", actor="user:1").rejected == 1
    assert learned.edit(alias.id, "restore", actor="user:1").rejected == 0
    assert learned.edit(alias.id, "forget", actor="user:1") is None
    assert actions(f"payer_alias:{alias.id}") == [
        "payer_alias.confirmed", "payer_alias.withdraw", "payer_alias.restore", "payer_alias.forget"]


# --- the pure side: Learned facts in, evidence out ----------------------------------

def _facts():
    from datetime import datetime, timezone

    from webapp.domain import matching
    from webapp.domain.matching import variants

    at = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    requests = [matching.RequestFacts(id=i, reference=f"PW-AAAA{c}", amount_minor=5000, currency="UGX",
                                      status="pending", created_at=at, customer_name=name, customer_phone=phone)
                for i, (c, name, phone) in enumerate([("B", *JOHN), ("C", *PETER)], start=1)]
    return matching, at, requests, matching.MatchSettings(names=variants.load())


@pytest.mark.parametrize("taught, phone, action, points", [
    ([("phone", "+256701999999", JOHN[1], 2, 0)], "0701999999", "confirm", 60),  # written locally
    ([("phone", "+256701999999", JOHN[1], 1, 0)], "0701999999", "review", 15),
    ([("phone", "+256701999999", JOHN[1], 2, 1)], "0701999999", "review", 0),
    ([("phone", "+256701999999", JOHN[1], 2, 0), ("phone", "+256701999999", PETER[1], 1, 0)],
     "+256701999999", "review", 0),  # pays for two customers
    ([("phone", "+256701999999", JOHN[1], 5, 0)], "0701***999", "review", None),  # a masked phone is no alias
])
def test_learned_phone_facts_decide_only_when_sure(taught, phone, action, points):
    matching, at, requests, settings = _facts()
    learned_ = tuple(matching.Learned(kind=k, alias=a, customer_phone=c, customer_name=None, confirmed=n,
                                      rejected=r) for k, a, c, n, r in taught)
    payment = matching.PaymentFacts(amount_minor=5000, currency="UGX", received_at=at, sender_phone=phone)
    decision = matching.match(payment, requests, settings=settings, now=at, learned=learned_)
    assert decision.action == action, decision.reason
    john = next(c for c in decision.candidates if c.request_id == 1)
    found = {e.signal: e.points for e in john.evidence}
    assert found.get("learned_phone") == points
