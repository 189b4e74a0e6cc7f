"""ledger.stored() puts on a row instance what reading the row back would give: the ledger never reads
again a row it just wrote, so the instance must hold the read's values and types, whether stored()
sets a value as it is (a str in a text field, an int in an integer or foreign-key field, a bool, None)
or takes it through the field's converters (times, JSON, a value of another type than its field's)."""
from datetime import datetime, timedelta, timezone

from webapp.domain import ledger
from webapp.domain.ledger.core import stored
from webapp.storage.models import Payment

KAMPALA = timezone(timedelta(hours=3))


def test_a_stored_row_holds_what_a_read_gives_back(ctx):
    request = ledger.create_request(ledger.NewRequest(amount_minor=5000, currency="UGX", source="ui"), actor="test")
    values = {
        "source": "sms-phone", "source_ref": 12345,  # an int in a CharField reads back as text
        "transaction_id": None, "txn_norm": "QK12345", "provider": "mtn", "amount_minor": 5000,
        "currency": "UGX", "sender_name": "Amina Nakato", "sender_phone": "+256700000001",
        "note": "PW-1 thanks", "received_at": datetime(2026, 12, 6, 23, 0, 1, 250000, tzinfo=KAMPALA),
        "raw": "", "parsed": True, "verified": False, "generic": False, "reading": "rule",
        "status": "confirmed", "request": request.id, "confidence": True,  # a bool in an IntegerField reads back as 1
        "evidence": [{"signal": "phone", "points": 60, "detail": ("same", "phone")}],  # a tuple reads back as a list
        "late": False, "verified_by": None, "verified_at": None, "reason": None,
        "created_at": datetime(2026, 12, 6, 20, 0, 2, tzinfo=timezone.utc),
    }
    payment_id = Payment.insert(**values).execute()
    read = Payment.get_by_id(payment_id)
    row = Payment(id=payment_id)
    stored(row, values)
    for name in values:
        got, want = getattr(row, name), getattr(read, name)
        assert (got, type(got)) == (want, type(want)), name
    assert row.source_ref == "12345" and row.confidence == 1 and row.request_id == request.id
    assert row.received_at == datetime(2026, 12, 6, 20, 0, 1, 250000, tzinfo=timezone.utc)
    assert row.evidence == [{"signal": "phone", "points": 60, "detail": ["same", "phone"]}]
