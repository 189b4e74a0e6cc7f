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


def _json_shapes():
    import enum

    class Colour(enum.Enum):
        RED = "red"

    class Level(enum.IntEnum):
        HIGH = 3

    class Tag(str, enum.Enum):
        VIP = "vip"

    return [
        {"zeta": 1, "alpha": [2, (3, 4)], "mid": {"y": None, "x": True}},  # keys come back sorted
        [{"signal": "amount", "points": 20, "detail": "UGX 5,000"}, {"signal": "phone", "points": 60, "detail": ""}],
        ("a", 1, 2.5, -0.0, float("inf"), False, None, 10 ** 30),
        {1: "int key", 2: "b"}, {None: 1}, {True: "bool key"},  # JSON turns such keys into text
        {"when": datetime(2026, 12, 6, 20, 0, tzinfo=timezone.utc)},  # default=str writes it as text
        [Colour.RED], {"level": Level.HIGH}, [Tag.VIP], {"tagged": {Tag.VIP: 1}},  # enums come back as their values
        "just text", 7, 1.25, [], {},
    ]


def _outcome(convert, value) -> tuple[str, str]:
    try:
        return "read", repr(convert(value))
    except (TypeError, ValueError) as error:
        return "refused", f"{type(error).__name__}: {error}"


def test_as_read_gives_what_the_round_trip_gives():
    """JSONField.as_read and UTCDateTimeField.as_read build the read value directly; for every shape
    they must give what the field's own db_value → python_value round trip gives, key order and
    types included, or refuse what it refuses with the same error."""
    evidence, received = Payment.evidence, Payment.received_at
    looped: list = []
    looped.append(looped)
    shapes = [*_json_shapes(), {1: "a", "b": 2}, looped]  # mixed keys cannot be sorted; a list inside itself
    for value in shapes:
        want = _outcome(lambda v: evidence.python_value(evidence.db_value(v)), value)
        assert _outcome(evidence.as_read, value) == want, value
    assert [_outcome(evidence.as_read, v)[0] for v in shapes[-2:]] == ["refused", "refused"]
    for value in _json_shapes():
        copy = evidence.as_read(value)
        assert copy is not value or not isinstance(value, (dict, list))  # a copy: the caller's value stays its own
    for value in (datetime(2026, 12, 6, 23, 0, 1, 250000, tzinfo=KAMPALA), datetime(2026, 1, 1, tzinfo=timezone.utc),
                  datetime(2026, 6, 30, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5)))):
        want = received.python_value(received.db_value(value))
        got = received.as_read(value)
        assert (got, got.tzinfo, got.microsecond) == (want, want.tzinfo, want.microsecond)
    try:
        received.as_read(datetime(2026, 12, 6, 20, 0))
    except ValueError as error:
        assert "naive datetime" in str(error)
    else:
        raise AssertionError("a naive datetime was accepted")
