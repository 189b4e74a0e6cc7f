"""What staff teach matching by deciding: payer aliases remembered, loaded as facts, edited on a page.

Every staff confirm or link remembers, for the request's customer, the payer's name
(when it is not simply the customer's own) and the payer's phone (when it is another
than the customer's): "J B OCEN" pays for John Bosco Ocen, +256772… pays for him.
A reject remembers the same pair as rejected: matching then withdraws it and no
longer suggests that name for that customer. Matching reads them as
`matching.Learned` facts (for_payment); after `learn_after` confirmations with no
rejection an alias is strong evidence. A customer is known by the request's E.164
phone, else by its folded name. Each change is audited; the ledger calls remember()
inside its own transaction, so a decision and what was learned from it commit together.
"""
from __future__ import annotations

from peewee import fn

from webapp.config import settings as config
from webapp.domain import audit, matching, options, phones
from webapp.domain.matching import names
from webapp.storage import db, sqlcache
from webapp.storage.models import Payment, PayerAlias, PaymentRequest, utcnow

EDITS = ("forget", "withdraw", "restore")
MAX_LOADED = 50  # aliases loaded per payment: bounded work whatever was learned


class LearnedError(ValueError):
    """An edit that cannot be done; `code` says which (not_found, invalid_edit)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _phone_key(raw: str | None) -> str | None:
    """A full phone as E.164 (read in the configured region); None for none or a masked one."""
    text = (raw or "").strip()
    if not text or any(c in "*xX•#?" for c in text):
        return None
    return phones.try_e164(text, config().phone_region)


def _customer(request: PaymentRequest, rules: matching.NameRules) -> tuple[str, str | None, str | None] | None:
    """(identity, phone, name key) of the request's customer; None when it names nobody."""
    phone = _phone_key(request.customer_phone)
    if phone:
        return f"phone:{phone}", phone, None
    key = names.key(request.customer_name, rules)
    return (f"name:{key}", None, key) if key else None


def _aliases(payment: Payment, request: PaymentRequest, rules: matching.NameRules) -> list[tuple[str, str, str]]:
    """(kind, alias, shown) worth remembering: a name not the customer's own, a phone not theirs."""
    found = []
    key = names.key(payment.sender_name, rules)
    if key and key != names.key(request.customer_name, rules):
        found.append(("name", key, (payment.sender_name or "").strip()[:200]))
    phone = _phone_key(payment.sender_phone)
    if phone and phone != _phone_key(request.customer_phone):
        found.append(("phone", phone, phone))
    return found


def remember(payment: Payment, request: PaymentRequest, *, confirmed: bool, actor: str) -> list[int]:
    """Count a staff decision for each alias of this payer and this customer; returns their ids.

    Call inside the decision's transaction. Upserts, so two decisions at once both count."""
    rules = options.name_rules()
    customer = _customer(request, rules)
    if customer is None:
        return []
    identity, phone, name_key = customer
    column = PayerAlias.confirmed if confirmed else PayerAlias.rejected
    now, ids = utcnow(), []
    for kind, alias, shown in _aliases(payment, request, rules):
        (PayerAlias.insert(kind=kind, alias=alias, shown=shown, customer=identity, customer_phone=phone,
                           customer_name=name_key, customer_label=(request.customer_name or "")[:200],
                           confirmed=int(confirmed), rejected=int(not confirmed), last_payment=payment.id,
                           created_at=now, updated_at=now)
         .on_conflict(conflict_target=[PayerAlias.kind, PayerAlias.alias, PayerAlias.customer],
                      update={column: column + 1, PayerAlias.shown: shown, PayerAlias.updated_at: now,
                              PayerAlias.last_payment: payment.id})
         .execute())
        row = PayerAlias.get(PayerAlias.kind == kind, PayerAlias.alias == alias, PayerAlias.customer == identity)
        ids.append(row.id)
        audit.record("payer_alias.confirmed" if confirmed else "payer_alias.rejected", f"payer_alias:{row.id}",
                     actor=actor, kind=kind, alias=shown, customer=identity, payment=payment.id,
                     request=request.reference, confirmed=row.confirmed, rejected=row.rejected)
    return ids


def wanted(facts: matching.PaymentFacts, rules: matching.NameRules) -> list[tuple[str, str]]:
    """The (kind, alias) pairs staff may have taught something about for this payment."""
    return [(kind, alias) for kind, alias in (("name", names.key(facts.sender_name, rules)),
                                              ("phone", _phone_key(facts.sender_phone))) if alias]


def for_payment(facts: matching.PaymentFacts, rules: matching.NameRules) -> tuple[matching.Learned, ...]:
    """What staff taught about this payment's name and phone, as matching facts (for_many() for
    one payment: its aliases looked up by the (kind, alias, customer) index)."""
    pairs = wanted(facts, rules)
    return pick(for_many(set(pairs)), pairs) if pairs else ()


def for_many(pairs: set[tuple[str, str]]) -> dict[tuple[str, str], list[PayerAlias]]:
    """for_payment() for a batch of payments in one statement: (kind, alias) -> its rows, at most
    MAX_LOADED each, most confirmed first; pick() then takes a payment's MAX_LOADED of its pairs."""
    by_kind = {kind: sqlcache.padded(sorted(a for k, a in pairs if k == kind)) for kind in ("name", "phone")
               if any(k == kind for k, _ in pairs)}
    found: dict[tuple[str, str], list[PayerAlias]] = {pair: [] for pair in pairs}
    if not by_kind:
        return found
    shape = "_".join(f"{kind}{len(values)}" for kind, values in by_kind.items())
    rows = sqlcache.select(
        PayerAlias, f"learned_many_{shape}",
        lambda p: ('SELECT * FROM (SELECT "payer_alias".*, ROW_NUMBER() OVER (PARTITION BY "kind", "alias" '
                   'ORDER BY "confirmed" DESC, "id") AS "rank_in_alias" FROM "payer_alias" WHERE '
                   + " OR ".join(f'("kind" = {p} AND "alias" IN ({sqlcache.marks(values, p)}))'
                                 for values in by_kind.values())
                   + f') AS "ranked" WHERE "rank_in_alias" <= {MAX_LOADED}'),
        [value for kind, values in by_kind.items() for value in (kind, *values)])
    for row in rows:
        found[(row.kind, row.alias)].append(row)
    return found


def pick(found: dict[tuple[str, str], list[PayerAlias]], pairs: list[tuple[str, str]]) -> tuple[matching.Learned, ...]:
    """What for_payment() returns for `pairs`, from for_many()'s rows."""
    rows = sorted((row for pair in pairs for row in found[pair]), key=lambda r: (-r.confirmed, r.id))
    return tuple(_learned(r) for r in rows[:MAX_LOADED])


def _learned(row: PayerAlias) -> matching.Learned:
    return matching.Learned(kind=row.kind, alias=row.alias, customer_phone=row.customer_phone,
                            customer_name=row.customer_name, confirmed=row.confirmed, rejected=row.rejected,
                            shown=row.shown)


def listing(search: str = ""):
    """Every alias, most recently changed first; `search` filters alias, shown text and customer."""
    query = PayerAlias.select().order_by(PayerAlias.updated_at.desc(), PayerAlias.id.desc())
    text = search.strip().lower()[:100]
    if text:
        query = query.where(fn.LOWER(PayerAlias.shown).contains(text) | PayerAlias.alias.contains(text)
                            | fn.LOWER(PayerAlias.customer_label).contains(text)
                            | fn.LOWER(PayerAlias.customer).contains(text))
    return query


def for_request(request: PaymentRequest):
    """The aliases taught for this request's customer."""
    customer = _customer(request, options.name_rules())
    if customer is None:
        return PayerAlias.select().where(PayerAlias.id.is_null())
    return PayerAlias.select().where(PayerAlias.customer == customer[0]).order_by(PayerAlias.updated_at.desc())


def status(row: PayerAlias, learn_after: int) -> str:
    """How matching reads the alias now: withdrawn, decisive or learning."""
    if row.rejected:
        return "withdrawn"
    return "decisive" if row.confirmed >= learn_after else "learning"


def edit(alias_id: int, action: str, *, actor: str) -> PayerAlias | None:
    """Staff correct what was learned: forget (delete), withdraw (count as rejected), restore
    (clear rejections). Audited; returns the row (None once forgotten). Raises LearnedError."""
    if action not in EDITS:
        raise LearnedError("invalid_edit", f"edit must be one of {', '.join(EDITS)}, not {action!r}")
    row = PayerAlias.get_or_none(PayerAlias.id == alias_id)
    if row is None:
        raise LearnedError("not_found", f"no learned payer alias {alias_id}")
    before = {"confirmed": row.confirmed, "rejected": row.rejected}
    with db.transaction():
        if action == "forget":
            row.delete_instance()
        else:
            rejected = max(1, row.rejected) if action == "withdraw" else 0
            PayerAlias.update(rejected=rejected, updated_at=utcnow()).where(PayerAlias.id == row.id).execute()
        audit.record(f"payer_alias.{action}", f"payer_alias:{alias_id}", actor=actor, kind=row.kind,
                     alias=row.shown or row.alias, customer=row.customer, before=before)
    return None if action == "forget" else PayerAlias.get_by_id(alias_id)
