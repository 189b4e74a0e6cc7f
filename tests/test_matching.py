from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webapp.domain.matching import (
    POINTS,
    Candidate,
    MatchSettings,
    PaymentFacts,
    RequestFacts,
    candidates,
    decide,
    match,
    score,
    window,
)
from webapp.domain.phones import to_e164

T0 = datetime(2025, 6, 1, 10, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)
AMOUNT = 500_000  # PKR 5,000.00
JANE_PHONE = "+923001234567"
BOB_PHONE = "+923217654321"
KE_PHONE = "+254712345678"


def req(id, reference, *, amount=AMOUNT, currency="PKR", name=None, phone=None,
        status="pending", created=T0, ttl=15, source=None, external_id=None):
    return RequestFacts(id=id, reference=reference, amount_minor=amount, currency=currency,
                        status=status, created_at=created, expires_at=created + ttl * MIN,
                        customer_name=name, customer_phone=phone, source=source,
                        external_id=external_id)


def pay(*, amount=AMOUNT, currency="PKR", at=T0 + 5 * MIN, note="", name=None, phone=None,
        source="mailbox", txn=None):
    return PaymentFacts(amount_minor=amount, currency=currency, received_at=at, note=note,
                        sender_name=name, sender_phone=phone, source=source, transaction_id=txn)


JANE = req(1, "PW-7KQ2M9", name="Jane Doe", phone=JANE_PHONE)
BOB = req(2, "PW-ABCDEF", name="Bob Otieno", phone=BOB_PHONE)
CAROL = req(3, "PW-GHJKMN", name="Carol Smith", phone="+923331112223")


@dataclass(frozen=True)
class Case:
    requests: tuple
    payment: PaymentFacts
    action: str
    chosen: int | None
    evidence: dict = field(default_factory=dict)  # signal -> points on the chosen candidate
    mode: str = "hybrid"
    rejected: frozenset = frozenset()
    late: bool = False  # the chosen candidate is late
    late_rival: bool = False  # a late candidate close behind the chosen one
    now: datetime | None = None


CASES = [
    pytest.param(Case((JANE, BOB, CAROL), pay(name="DOE Jane"), "confirm", 1,
                      {"name": 35, "name_unique": 25, "amount_unique": 0}),
                 id="the-only-same-name-among-same-amount-requests-confirms"),
    pytest.param(Case((JANE, replace(BOB, customer_name="Jane Doe", customer_phone=None)), pay(name="Jane Doe"),
                      "review", 1, {"name": 35}), id="two-requests-in-the-payers-name-go-to-review"),
    pytest.param(Case((JANE, BOB), pay(name="Jane Deo"), "review", 1, {"name": 35}),
                 id="a-name-one-letter-off-among-same-amount-requests-goes-to-review"),
    pytest.param(Case((JANE, BOB), pay(note="Booking PW-7KQ2M9"), "confirm", 1,
                      {"reference": 100}), id="reference-quoted-confirms-among-same-amount"),
    pytest.param(Case((JANE, BOB), pay(note="for pw 7kq 2m9 thx"), "confirm", 1,
                      {"reference": 100}), id="reference-lower-case-and-split-confirms"),
    pytest.param(Case((JANE, BOB), pay(note="7KQ2M9"), "confirm", 1, {"reference": 100}),
                 id="reference-body-without-prefix-confirms"),
    pytest.param(Case((JANE, BOB), pay(note="PW-7KQ2M9", name="Bob Otieno", phone=BOB_PHONE),
                      "confirm", 1, {"reference": 100, "phone": 0}),
                 id="quoted-reference-outweighs-another-payers-phone"),
    pytest.param(Case((JANE,), pay(note="PW-7KQ2N9"), "confirm", 1,
                      {"reference": 60, "amount_unique": 30}),
                 id="reference-typo-with-unique-amount-confirms"),
    pytest.param(Case((JANE, BOB), pay(note="PW-7KQ2N9"), "confirm", 1, {"reference": 60}),
                 id="reference-typo-among-same-amount-confirms"),
    pytest.param(Case((JANE, replace(BOB, reference="PW-7KQ2N8")), pay(note="PW-7KQ2N9"), "review", 1,
                      {"reference": 60}), id="reference-typo-near-two-references-is-a-tie-review"),
    pytest.param(Case((JANE,), pay(note="ref PW-7KQ2M0"), "confirm", 1, {"reference": 60}),
                 id="zero-typed-in-reference-is-a-typo"),
    pytest.param(Case((JANE, BOB), pay(note="PW-7KQ2M9 and PW-ABCDEF"), "review", 1,
                      {"reference": 100}), id="two-references-quoted-for-same-amount-review"),
    pytest.param(Case((replace(JANE, amount_minor=400_000),), pay(note="PW-7KQ2M9"), "review", 1,
                      {"reference": 100, "mismatch": 0}),
                 id="reference-for-another-amount-goes-to-review"),
    pytest.param(Case((replace(JANE, amount_minor=400_000), BOB),
                      pay(note="PW-7KQ2M9", phone=BOB_PHONE), "review", 2, {"phone": 60}),
                 id="reference-for-another-amount-blocks-confirming-another"),
    pytest.param(Case((replace(JANE, amount_minor=400_000),), pay(note="PW-7KQ2M9"), "unmatched",
                      None, mode="automated"), id="reference-for-another-amount-automated-unmatched"),
    pytest.param(Case((JANE, BOB, CAROL), pay(phone=JANE_PHONE), "confirm", 1,
                      {"phone": 60, "amount_unique": 0}), id="phone-equal-confirms-among-same-amount"),
    pytest.param(Case((JANE, BOB), pay(phone=to_e164("0300 1234567", "PK")), "confirm", 1,
                      {"phone": 60}), id="phone-in-local-format-normalised-confirms"),
    pytest.param(Case((JANE, BOB), pay(phone="03001234567"), "confirm", 1, {"phone": 60}),
                 id="phone-left-local-matches-on-last-nine-digits"),
    pytest.param(Case((JANE,), pay(name="DOE JANE"), "confirm", 1,
                      {"name": 35, "amount_unique": 30}), id="names-in-another-order-unique-confirms"),
    pytest.param(Case((JANE,), pay(name="Jane Deo"), "confirm", 1, {"name": 35}),
                 id="name-with-a-typo-unique-confirms"),
    pytest.param(Case((JANE,), pay(name="JANE WANJIKU DOE"), "confirm", 1, {"name": 35}),
                 id="name-with-a-middle-name-unique-confirms"),
    pytest.param(Case((req(1, "PW-7KQ2M9", name="Muhammad Ali Khan"),),
                      pay(name="MUHAMMAD ASIF KHAN"), "review", 1, {"name": 15}),
                 id="similar-but-different-name-unique-goes-to-review"),
    pytest.param(Case((JANE,), pay(name="JANE"), "review", 1, {"name": 0}),
                 id="first-name-alone-is-no-evidence"),
    pytest.param(Case((JANE,), pay(), "review", 1, {"amount_unique": 30}),
                 id="amount-alone-unique-goes-to-review"),
    pytest.param(Case((JANE,), pay(), "unmatched", None, mode="automated"),
                 id="amount-alone-unique-automated-leaves-unmatched"),
    pytest.param(Case((JANE, BOB, CAROL), pay(name="Someone Else"), "review", 1,
                      {"amount_unique": 0}), id="many-same-amount-no-signal-hybrid-review"),
    pytest.param(Case((JANE, BOB, CAROL), pay(), "unmatched", None, mode="automated"),
                 id="many-same-amount-no-signal-automated-unmatched"),
    pytest.param(Case((JANE, replace(BOB, id=4, customer_name="Jane Doe", customer_phone=JANE_PHONE)),
                      pay(phone=JANE_PHONE, name="Jane Doe"), "review", 1, {"phone": 60}),
                 id="tie-same-payer-two-open-requests-review"),
    pytest.param(Case((JANE, BOB), pay(phone=JANE_PHONE, name="Bob Otieno"), "review", 1,
                      {"phone": 60, "name": 0}), id="near-tie-phone-against-name-review"),
    pytest.param(Case((JANE, BOB), pay(phone=JANE_PHONE, name="Bob Otieno"), "unmatched", None,
                      mode="automated"), id="near-tie-automated-leaves-unmatched"),
    pytest.param(Case((JANE, replace(BOB, customer_name="Jane Doe")),
                      pay(phone=JANE_PHONE, name="Jane Doe"), "confirm", 1,
                      {"phone": 60, "name": 35}), id="clear-lead-over-a-namesake-confirms"),
    pytest.param(Case((replace(JANE, currency="KES"),), pay(phone=JANE_PHONE), "unmatched", None),
                 id="wrong-currency-is-no-candidate"),
    pytest.param(Case((replace(JANE, currency="KES"),), pay(note="PW-7KQ2M9"), "review", 1,
                      {"mismatch": 0}), id="wrong-currency-with-quoted-reference-review"),
    pytest.param(Case((JANE,), pay(amount=AMOUNT + 1, phone=JANE_PHONE, name="Jane Doe"),
                      "unmatched", None), id="amount-off-by-one-minor-unit-unmatched"),
    pytest.param(Case((replace(JANE, status="paid"), BOB), pay(phone=JANE_PHONE, name="Jane Doe"),
                      "review", 2, {"phone": 0, "amount_unique": 30}),
                 id="same-payer-paying-twice-never-attaches-to-paid-request"),
    pytest.param(Case((replace(JANE, status="paid"),), pay(note="PW-7KQ2M9", phone=JANE_PHONE),
                      "review", 1, {"mismatch": 0}), id="paying-twice-quoting-paid-reference-review"),
    pytest.param(Case((replace(JANE, status="expired"),), pay(at=T0 + 2 * 60 * MIN, phone=JANE_PHONE),
                      "review", 1, {"phone": 60}, late=True), id="late-payment-review-flagged-late"),
    pytest.param(Case((replace(JANE, status="expired"),), pay(at=T0 + 2 * 60 * MIN, note="PW-7KQ2M9"),
                      "review", 1, {"reference": 100}, mode="automated", late=True),
                 id="late-payment-automated-still-review"),
    pytest.param(Case((JANE,), pay(at=T0 + 90 * MIN, phone=JANE_PHONE), "review", 1, late=True),
                 id="late-for-request-not-yet-swept-review"),
    pytest.param(Case((JANE, replace(BOB, created_at=T0 - 120 * MIN, expires_at=T0 - 100 * MIN,
                                     status="expired")), pay(at=T0 + 5 * MIN), "review", 1,
                      late_rival=True),
                 id="late-candidate-close-to-on-time-review"),
    pytest.param(Case((replace(JANE, status="expired"),), pay(at=T0 + 25 * MIN, phone=JANE_PHONE),
                      "review", 1, {"phone": 60}, late=True),
                 id="money-moved-ten-minutes-after-expiry-is-late-even-inside-the-grace"),
    pytest.param(Case((JANE,), pay(at=T0 + 16 * MIN, note="PW-7KQ2M9", phone=JANE_PHONE),
                      "review", 1, {"reference": 100}, late=True),
                 id="money-moved-a-minute-after-expiry-with-the-reference-is-late"),
    pytest.param(Case((replace(JANE, status="expired"),), pay(at=T0 + 14 * MIN, phone=JANE_PHONE),
                      "confirm", 1, {"phone": 60}, now=T0 + 25 * MIN),
                 id="a-late-notice-of-money-moved-before-expiry-confirms"),
    pytest.param(Case((JANE,), pay(at=T0 + 15 * MIN, phone=JANE_PHONE), "confirm", 1, {"phone": 60}),
                 id="money-moved-at-the-expiry-second-is-on-time"),
    pytest.param(Case((replace(JANE, status="expired"),), pay(at=T0 + 5 * 24 * 60 * MIN, phone=JANE_PHONE),
                      "unmatched", None), id="expired-beyond-lookback-unmatched"),
    pytest.param(Case((JANE,), pay(at=T0 - 10 * MIN, phone=JANE_PHONE), "unmatched", None),
                 id="received-before-creation-outside-skew-unmatched"),
    pytest.param(Case((JANE,), pay(at=T0 - 3 * MIN, phone=JANE_PHONE), "confirm", 1),
                 id="received-before-creation-inside-skew-confirms"),
    pytest.param(Case((JANE,), pay(at=T0 + 24 * 60 * MIN, phone=JANE_PHONE), "confirm", 1,
                      now=T0 + 5 * MIN), id="received-in-the-future-read-as-now"),
    pytest.param(Case((JANE,), pay(phone=JANE_PHONE), "unmatched", None, rejected=frozenset({1})),
                 id="rejected-pair-is-never-suggested-again"),
    pytest.param(Case((JANE, BOB), pay(note="PW-7KQ2M9"), "review", 2, {"amount_unique": 30},
                      rejected=frozenset({1})), id="rejected-pair-leaves-the-other-request"),
    pytest.param(Case((JANE,), pay(note="PW-7KQ2M9"), "review", 1, {"reference": 100}, mode="manual"),
                 id="manual-mode-sends-a-sure-match-to-review"),
    pytest.param(Case((JANE,), pay(note="PW-7KQ2M9"), "confirm", 1, mode="automated"),
                 id="automated-mode-confirms-a-sure-match"),
    pytest.param(Case((JANE,), pay(), "unmatched", None, mode="manual", rejected=frozenset({1})),
                 id="manual-mode-without-candidates-unmatched"),
    pytest.param(Case((replace(JANE, customer_phone=KE_PHONE),),
                      pay(phone="0712***678", name="JANE DOE"), "confirm", 1,
                      {"phone": 60, "name": 35, "amount_unique": 30}),
                 id="masked-phone-fitting-plus-name-confirms"),
    pytest.param(Case((replace(JANE, customer_phone=KE_PHONE), BOB), pay(phone="0712***678"), "confirm", 1,
                      {"phone": 60}), id="masked-phone-fitting-one-of-several-confirms"),
    pytest.param(Case((replace(JANE, customer_phone=KE_PHONE), replace(BOB, customer_phone="+254712999678")),
                      pay(phone="0712***678"), "review", 1, {"phone": 15}),
                 id="masked-phone-fitting-two-is-weak-review"),
    pytest.param(Case((replace(JANE, customer_phone=KE_PHONE), BOB), pay(phone="071****678"), "review", 1,
                      {"phone": 15}), id="masked-phone-with-five-digits-is-weak-review"),
    pytest.param(Case((replace(JANE, customer_phone=KE_PHONE),), pay(phone="0799***678"), "review", 1,
                      {"phone": 0}), id="masked-phone-not-fitting-is-no-evidence"),
    pytest.param(Case((replace(JANE, source="iotec", external_id="a1b2c3d4-uuid"), BOB),
                      pay(source="iotec", txn="A1B2C3D4-UUID"), "confirm", 1,
                      {"transaction_id": 60, "source": 15}),
                 id="transaction-id-equal-to-external-id-confirms"),
    pytest.param(Case((replace(JANE, source="portal"),), pay(source="portal"), "review", 1,
                      {"source": 15, "amount_unique": 30}), id="same-source-and-unique-amount-review"),
    pytest.param(Case((replace(JANE, status="review"),), pay(phone=JANE_PHONE), "confirm", 1),
                 id="request-in-review-is-still-a-candidate"),
    pytest.param(Case((replace(JANE, status="cancelled"),), pay(phone=JANE_PHONE), "unmatched", None),
                 id="cancelled-request-is-no-candidate"),
]


@pytest.mark.parametrize("case", CASES)
def test_matching_decides(case):
    settings = MatchSettings(mode=case.mode)
    decision = match(case.payment, case.requests, rejected_request_ids=case.rejected,
                     settings=settings, now=case.now or case.payment.received_at)
    assert decision.action == case.action, decision.reason
    assert decision.late == (case.late or case.late_rival)
    if case.chosen is None:
        assert decision.candidate is None
        return
    assert decision.candidate is not None
    chosen = decision.candidate
    if case.action == "confirm":
        assert chosen.request_id == case.chosen
    else:
        shown = [c.request_id for c in decision.candidates]
        assert case.chosen in shown and chosen.request_id in shown
        if case.evidence:
            chosen = next(c for c in decision.candidates if c.request_id == case.chosen)
    points = {e.signal: e.points for e in chosen.evidence}
    for signal, expected in case.evidence.items():
        assert points[signal] == expected, (signal, chosen.evidence)
    assert chosen.late == case.late
    assert not any(c.request_id in case.rejected for c in decision.candidates)


def test_the_table_covers_at_least_thirty_cases():
    assert len(CASES) >= 30


# --- units -----------------------------------------------------------------

SETTINGS = MatchSettings()


def test_window_runs_from_creation_minus_skew_to_expiry_plus_grace():
    assert window(JANE, SETTINGS) == (T0 - 5 * MIN, T0 + 30 * MIN)
    assert window(replace(JANE, expires_at=None), SETTINGS) == (T0 - 5 * MIN, None)


def test_score_lists_every_signal_separately_with_its_points():
    candidate = score(pay(note="PW-7KQ2M9", phone=JANE_PHONE, name="Jane Doe"), JANE,
                      same_amount_open=1, settings=SETTINGS, now=T0 + 5 * MIN)
    assert candidate is not None
    signals = [e.signal for e in candidate.evidence]
    assert signals == ["currency", "amount", "window", "reference", "transaction_id", "phone",
                       "name", "amount_unique", "source"]
    points = {e.signal: e.points for e in candidate.evidence}
    assert points == {"currency": 0, "amount": 0, "window": 0, "reference": 100,
                      "transaction_id": 0, "phone": 60, "name": 35, "amount_unique": 30,
                      "source": 0}
    assert candidate.score == 100 and candidate.decisive and not candidate.late
    assert all(e.detail for e in candidate.evidence)


def test_score_is_the_sum_of_points_below_the_cap():
    candidate = score(pay(phone=JANE_PHONE), JANE, same_amount_open=2, settings=SETTINGS)
    assert candidate is not None and candidate.score == POINTS["phone"]
    assert not candidate.decisive


@pytest.mark.parametrize("request_", [
    replace(JANE, currency="KES"), replace(JANE, amount_minor=AMOUNT - 1),
    replace(JANE, status="paid"), replace(JANE, paid=True), replace(JANE, status="failed"),
    replace(JANE, created_at=T0 + 20 * MIN, expires_at=T0 + 35 * MIN),
], ids=["currency", "amount", "status-paid", "paid-flag", "failed", "created-after-payment"])
def test_score_is_none_when_a_hard_requirement_fails(request_):
    assert score(pay(phone=JANE_PHONE), request_, same_amount_open=1, settings=SETTINGS) is None


def test_a_quoted_request_failing_a_hard_requirement_is_a_mismatch_with_score_zero():
    candidate = score(pay(note="PW-7KQ2M9"), replace(JANE, amount_minor=1), same_amount_open=0,
                      settings=SETTINGS)
    assert candidate is not None and candidate.score == 0
    assert candidate.mismatch is not None and "amount" in candidate.mismatch


def test_window_evidence_says_when_the_money_came():
    late = score(pay(at=T0 + 60 * MIN), replace(JANE, status="expired"), same_amount_open=1,
                 settings=SETTINGS)
    assert late is not None and late.late
    assert next(e.detail for e in late.evidence if e.signal == "window").startswith("late:")


def test_candidates_count_the_same_amount_themselves_and_rank_best_first():
    ranked = candidates(pay(phone=BOB_PHONE), [JANE, BOB, replace(CAROL, amount_minor=1)],
                        settings=SETTINGS, now=T0 + 5 * MIN)
    assert [c.request_id for c in ranked] == [2, 1]
    assert all({e.signal: e.points for e in c.evidence}["amount_unique"] == 0 for c in ranked)


def test_decide_with_no_candidates_is_unmatched():
    decision = decide(pay(), [], SETTINGS)
    assert decision.action == "unmatched" and decision.candidate is None


def test_decide_never_confirms_a_mismatch_even_in_automated_mode():
    mismatch = Candidate(1, "PW-7KQ2M9", 0, (), mismatch="already paid")
    assert decide(pay(), [mismatch], MatchSettings(mode="automated")).action == "unmatched"


def test_thresholds_are_settings():
    lenient = MatchSettings(auto_confirm_threshold=30)
    assert match(pay(), [JANE], settings=lenient).action == "confirm"
    strict = MatchSettings(review_threshold=50)
    assert match(pay(), [JANE], settings=strict).action == "unmatched"


def test_a_naive_received_at_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        score(pay(at=datetime(2025, 6, 1, 10, 5)), JANE, same_amount_open=1, settings=SETTINGS)


@pytest.mark.parametrize("kwargs, name", [
    ({"mode": "auto"}, "mode"), ({"auto_confirm_threshold": 101}, "auto_confirm_threshold"),
    ({"tie_margin": -1}, "tie_margin"), ({"grace": timedelta(minutes=-1)}, "grace"),
])
def test_bad_settings_name_the_field(kwargs, name):
    with pytest.raises(ValueError, match=name):
        MatchSettings(**kwargs)


def test_an_exact_quote_wins_over_an_inexact_rival_at_the_same_score():
    rival = replace(BOB, customer_name="Jane Doe", customer_phone=JANE_PHONE, source="mailbox")
    decision = match(pay(note="PW-7KQ2M9", name="Jane Doe", phone=JANE_PHONE), [rival, JANE],
                     settings=SETTINGS)
    assert [c.score for c in decision.candidates] == [100, 100]
    assert decision.action == "confirm" and decision.candidate.request_id == 1


def test_two_exact_quotes_never_confirm_even_with_no_margin():
    both = pay(note="PW-7KQ2M9 PW-ABCDEF")
    assert match(both, [JANE, BOB], settings=MatchSettings(tie_margin=0)).action == "review"


_scores = st.lists(st.tuples(st.integers(0, 100), st.booleans(), st.booleans()), max_size=5)


@given(_scores, st.sampled_from(["automated", "manual", "hybrid"]))
def test_a_confirmation_is_always_clear_on_time_and_above_the_threshold(rows, mode):
    ranked = [Candidate(i, f"R{i}", s, (), late=late, decisive=s == 100 and dec)
              for i, (s, late, dec) in enumerate(rows)]
    decision = decide(pay(), ranked, MatchSettings(mode=mode))
    if decision.action != "confirm":
        return
    best = decision.candidate
    assert best is not None and mode != "manual" and not best.late
    assert best.score >= SETTINGS.auto_confirm_threshold
    for other in ranked:
        if other is not best:
            assert not other.decisive
            if other.late or not best.decisive:
                assert best.score - other.score >= SETTINGS.tie_margin
