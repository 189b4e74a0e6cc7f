"""A hostile API client, as hypothesis strategies: odd JSON, boundary numbers, control characters,
forged cursors, huge ids, deep nesting, odd headers. Used by tests/test_api_fuzz.py and bench/fuzz_api.py.

`api_routes(app)` lists every /api/v1 endpoint from the URL map (a new endpoint is fuzzed
without a change here); `hostile_request(routes)` draws one request for one of them.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from urllib.parse import quote

from hypothesis import strategies as st

# Field names the API reads, so drawn bodies reach the checks behind them, not only "unknown key".
FIELDS = ("amount", "currency", "customer_name", "customer_phone", "agent_code", "reference",
          "expires_in_minutes", "voucher_pool", "gateway", "external_id", "collect", "meta", "source_ref",
          "sender_name", "sender_phone", "note", "transaction_id", "received_at", "payment_id", "reason",
          "notify_customer", "message")
QUERY = ("status", "source", "limit", "cursor", "since", "amount")
BOUNDARY_INTS = (0, -1, 1, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**15 - 1, 10**15,
                 10**40)
ODD_TEXT = ("1e999999", "-1e999999", "1E5", "NaN", "Infinity", "-0", "0x10", "5,000", "5000.000000001",
            "٥٠٠٠", "５０００", "9" * 5000, "0." + "0" * 400 + "1", "", " ", "\u0000", "a\u0000b", "\u001b[31m",
            "\ud800", "\ufeff5000", "PW-" + "A" * 300, "0001-01-01T00:00:00+03:00", "9999-12-31T23:59:59-05:00",
            "2026-13-45T99:99:99Z", "2026-06-14T12:00:00", "XYZ", "ugx", "paid", "review", "\n", "%00", "../..",
            "<script>", "' OR 1=1 --", "{{7*7}}")
STATUSES = ("pending", "paid", "review", "unmatched", "confirmed", "rejected", "expired")


def _cursor() -> st.SearchStrategy[str]:
    def encode(n: int) -> str:
        return base64.urlsafe_b64encode(str(n).encode()).decode().rstrip("=")

    return st.one_of(st.sampled_from(BOUNDARY_INTS).map(encode), st.integers().map(encode),
                     st.text(max_size=40), st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).decode()))


def scalars() -> st.SearchStrategy:
    return st.one_of(
        st.none(), st.booleans(), st.sampled_from(BOUNDARY_INTS), st.integers(),
        st.floats(allow_nan=True, allow_infinity=True), st.decimals(allow_nan=False, allow_infinity=False).map(str),
        st.sampled_from(ODD_TEXT), st.text(max_size=30), st.sampled_from(STATUSES),
        st.integers(min_value=0, max_value=3000).map(lambda n: "9" * n),
    )


def json_values() -> st.SearchStrategy:
    return st.recursive(scalars(), lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=12)), inner, max_size=4),
                        max_leaves=12)


def _number_text() -> st.SearchStrategy[str]:
    """JSON number literals no json.dumps writes: huge, exponent forms, long fractions."""
    return st.one_of(st.integers(min_value=1, max_value=60000).map(lambda n: "9" * n),
                     st.sampled_from(["1e999999", "-1e999999", "1E-999999", "0.0000000001", "100e-2", "1" + "0" * 400]))


@st.composite
def bodies(draw) -> bytes:
    kind = draw(st.sampled_from(["near_valid", "near_valid", "fields", "fields", "raw_number", "deep", "wide",
                                 "garbage", "empty"]))
    if kind == "near_valid":  # a body every POST accepts, one or two fields made hostile: reaches the ledger
        body = {"amount": "5000", "currency": "UGX", "customer_name": "Fuzz Kato", "customer_phone": "+256772123456",
                "source_ref": draw(st.text(min_size=1, max_size=20)), "reason": "fuzz", "reference": "PW-FUZZ01"}
        for name in draw(st.lists(st.sampled_from(FIELDS), min_size=0, max_size=2, unique=True)):
            body[name] = draw(scalars())
        return json.dumps(body).encode()
    if kind == "fields":
        body = draw(st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=10)), json_values(),
                                    max_size=8))
        return json.dumps(body).encode()
    if kind == "raw_number":
        return b'{"%s": %s, "currency": "UGX", "source_ref": "fuzz"}' % (
            draw(st.sampled_from(FIELDS)).encode(), draw(_number_text()).encode())
    if kind == "deep":
        depth = draw(st.sampled_from([31, 32, 33, 100, 999, 5000, 100_000]))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        inner = opener * depth + b"1" + closer * depth
        return b'{"meta": ' + inner + b"}" if draw(st.booleans()) else inner
    if kind == "wide":
        size = draw(st.sampled_from([16 * 1024, 70 * 1024, 2 * 1024 * 1024]))
        return json.dumps({"amount": "5000", "meta": {"blob": "x" * size}}).encode()
    if kind == "garbage":
        return draw(st.one_of(st.binary(max_size=200), st.sampled_from(
            [b"{", b"[1,2", b"\xff\xfe{}", b'{"a": NaN}', b'{"a": "\\ud800"}', b"null", b"[]", b'"x"', b"{}" * 1000])))
    return b""


def _path_value(converter: str) -> st.SearchStrategy[str]:
    if converter == "IdConverter":
        return st.one_of(st.sampled_from([n for n in BOUNDARY_INTS if n >= 0]).map(str),
                         st.integers(min_value=0, max_value=60).map(lambda n: "9" * max(n, 1)))
    return st.one_of(st.sampled_from(ODD_TEXT), st.text(min_size=1, max_size=80), st.just("PW-FUZZ01"))


@st.composite
def queries(draw) -> str:
    params = draw(st.dictionaries(
        st.one_of(st.sampled_from(QUERY), st.text(min_size=1, max_size=8)),
        st.one_of(st.sampled_from(ODD_TEXT), st.text(max_size=40), st.sampled_from(STATUSES), _cursor(),
                  st.sampled_from(BOUNDARY_INTS).map(str)),
        max_size=4))
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='', errors='surrogatepass')}" for k, v in params.items())


_HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=300)


@st.composite
def headers(draw) -> dict[str, str]:
    extra: dict[str, str] = {}
    if draw(st.booleans()):
        extra["Idempotency-Key"] = draw(st.one_of(_HEADER_TEXT, st.just("k" * 300), st.just("fuzz-key")))
    if draw(st.booleans()):
        extra["Content-Type"] = draw(st.sampled_from(
            ["application/json", "text/plain", "application/json; charset=latin-1", "multipart/form-data",
             "application/x-www-form-urlencoded", "application/json; charset=utf-16"]))
    for name in draw(st.lists(st.sampled_from(["X-Forwarded-For", "Accept", "HX-Request", "Content-Encoding",
                                               "Transfer-Encoding-Note", "Origin"]), max_size=2, unique=True)):
        extra[name] = draw(_HEADER_TEXT)
    return extra


@dataclass
class Route:
    rule: str
    methods: tuple[str, ...]
    arguments: dict[str, str] = field(default_factory=dict)  # name -> converter class name


@dataclass
class HostileRequest:
    method: str
    path: str  # percent-encoded, query string included
    headers: dict[str, str]
    body: bytes | None


def api_routes(app) -> list[Route]:
    """Every /api/v1 endpoint of `app`, with its methods and path arguments."""
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        methods = tuple(sorted(m for m in rule.methods if m not in ("HEAD", "OPTIONS")))
        arguments = {name: type(conv).__name__ for name, conv in rule._converters.items()}
        routes.append(Route(rule.rule, methods, arguments))
    return sorted(routes, key=lambda r: r.rule)


@st.composite
def hostile_request(draw, routes: list[Route]) -> HostileRequest:
    route = draw(st.sampled_from(routes))
    method = draw(st.sampled_from(route.methods))
    path = route.rule
    for name, converter in route.arguments.items():
        value = draw(_path_value(converter))
        path = path.replace(f"<{'int:' if converter == 'IdConverter' else ''}{name}>",
                            quote(value, safe="", errors="surrogatepass"))
    query = draw(queries()) if method == "GET" or draw(st.booleans()) else ""
    body = draw(bodies()) if method in ("POST", "PATCH", "PUT") else None
    extra = draw(headers())
    if body is not None:
        extra.setdefault("Content-Type", "application/json")
    return HostileRequest(method, path + (f"?{query}" if query else ""), extra, body)
