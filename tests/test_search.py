"""The requests and payments lists' ?q= search: indexed (FTS5 trigram / pg_trgm), same answers as a
"contains", kept in step with every insert, update and delete; exact reference, phone and
transaction id first."""
from datetime import timedelta

from webapp.storage import db
from webapp.storage.models import Payment, PaymentRequest, utcnow


def request_row(reference: str, name: str, phone: str | None = None) -> PaymentRequest:
    return PaymentRequest.create(reference=reference, amount_minor=1000, requested_minor=1000, currency="UGX",
                                 customer_name=name, customer_phone=phone, expires_at=utcnow() + timedelta(hours=1))


def payment_row(ref: str, **fields) -> Payment:
    return Payment.create(source="portal", source_ref=ref, amount_minor=1000, currency="UGX",
                          received_at=utcnow(), **fields)


def shown(client, path: str, candidates: list[str]) -> set[str]:
    page = client.get(path)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    return {c for c in candidates if c in text}


REFS = ["PW-SRCH01", "PW-SRCH02", "PW-SRCH03", "PW-SRCH04"]


def seed_requests():
    with db.transaction():
        request_row("PW-SRCH01", "Joseph Mukasa", "+256772123456")
        request_row("PW-SRCH02", "Grace Nakato", "+256701555666")
        request_row("PW-SRCH03", "Mukasa Holdings Ltd")
        request_row("PW-SRCH04", "Al", None)


def test_requests_search_finds_any_part_of_a_name_in_any_case(client, domain, login_as):
    login_as("viewer")
    domain(seed_requests)
    assert shown(client, "/requests/?q=kasa", REFS) == {"PW-SRCH01", "PW-SRCH03"}
    assert shown(client, "/requests/?q=NAKATO", REFS) == {"PW-SRCH02"}
    assert shown(client, "/requests/?q=holdings ltd", REFS) == {"PW-SRCH03"}
    assert shown(client, "/requests/?q=nobody", REFS) == set()
    # Under 3 characters no trigram index helps: the plain "contains" still answers.
    assert shown(client, "/requests/?q=al", REFS) == {"PW-SRCH04"}
    # Part of a phone, in the local form people type.
    assert shown(client, "/requests/?q=0701 555", REFS) == {"PW-SRCH02"}


def test_an_exact_reference_or_phone_is_looked_up_first(client, domain, login_as):
    login_as("viewer")
    domain(seed_requests)
    # "PW-SRCH0" is in every reference; the exact one shows only itself (any case).
    assert shown(client, "/requests/?q=pw-srch03", REFS) == {"PW-SRCH03"}
    assert shown(client, "/requests/?q=PW-SRCH0", REFS) == set(REFS)
    assert shown(client, "/requests/?q=0772123456", REFS) == {"PW-SRCH01"}


def test_the_search_follows_updates_and_deletes(client, domain, login_as):
    login_as("viewer")
    domain(seed_requests)

    def rename():
        with db.transaction():
            PaymentRequest.update(customer_name="Peter Okello").where(PaymentRequest.reference == "PW-SRCH01").execute()
            PaymentRequest.delete().where(PaymentRequest.reference == "PW-SRCH02").execute()

    domain(rename)
    assert shown(client, "/requests/?q=kasa", REFS) == {"PW-SRCH03"}
    assert shown(client, "/requests/?q=okello", REFS) == {"PW-SRCH01"}
    assert shown(client, "/requests/?q=nakato", REFS) == set()


def test_payments_search_over_sender_note_and_transaction_with_the_id_first(client, domain, login_as):
    login_as("viewer")

    def seed():
        with db.transaction():
            return [payment_row("s-1", sender_name="OKOT JAMES", note="school fees term 2",
                                transaction_id="QK12ABC345", txn_norm="QK12ABC345").id,
                    payment_row("s-2", sender_name="AUMA GRACE", sender_phone="+256772000111",
                                transaction_id="QK12ABC3456", txn_norm="QK12ABC3456").id,
                    payment_row("s-3", note="rent for march").id]

    ids = domain(seed)
    rows = [f'id="payment-{i}"' for i in ids]

    def found(q):
        return {rows.index(r) for r in shown(client, f"/payments/?q={q}", rows)}

    assert found("fees") == {0}
    assert found("okot") == {0}
    assert found("MARCH") == {2}
    assert found("0772000111") == {1}
    # A transaction id as the ledger compares them: the exact one, not the longer one containing it.
    assert found("qk12-abc.345") == {0}
    assert found("QK12ABC") == {0, 1}
