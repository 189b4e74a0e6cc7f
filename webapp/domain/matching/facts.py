"""What matching reads and returns: plain frozen dataclasses, the points table, the settings."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from webapp.domain.matching.names import NameRules

Mode = Literal["automated", "manual", "hybrid"]
Action = Literal["confirm", "review", "unmatched"]
MODES = ("automated", "manual", "hybrid")
OPEN_STATUSES = frozenset({"pending", "review"})

POINTS = {
    "reference": 100, "reference_near": 60, "transaction_id": 60, "phone": 60,
    "phone_masked": 60, "phone_partial": 15, "name": 35, "name_similar": 15, "amount_unique": 30,
    "name_unique": 25, "source": 15, "corroborated": 10, "learned": 60, "learned_weak": 15,
}


@dataclass(frozen=True)
class PaymentFacts:
    """Money seen at a source. `received_at` is timezone-aware UTC."""
    amount_minor: int
    currency: str
    received_at: datetime
    note: str | None = None
    sender_name: str | None = None
    sender_phone: str | None = None  # E.164, or a masked form as the source shows it
    source: str | None = None
    transaction_id: str | None = None
    corroborated_by: str | None = None  # another source that reported the same transaction


@dataclass(frozen=True)
class RequestFacts:
    """What is owed, as matching needs it. Times are timezone-aware UTC."""
    id: int | str
    reference: str
    amount_minor: int
    currency: str
    status: str
    created_at: datetime
    expires_at: datetime | None = None
    customer_name: str | None = None
    customer_phone: str | None = None
    source: str | None = None
    external_id: str | None = None
    paid: bool = False


@dataclass(frozen=True)
class Evidence:
    """One signal: its name (see POINTS), the points it gave, why, for the UI."""
    signal: str
    points: int
    detail: str


@dataclass(frozen=True)
class Candidate:
    """A request the payment may pay. `decisive`: the note quotes its reference.
    `mismatch`: why a quoted request fails a hard requirement (score 0)."""
    request_id: int | str
    reference: str
    score: int
    evidence: tuple[Evidence, ...]
    late: bool = False
    decisive: bool = False
    mismatch: str | None = None


@dataclass(frozen=True)
class Decision:
    """What to do with the payment. `candidate`: the one confirmed, or the best one
    shown first in review. `late`: a late candidate is among the contenders."""
    action: Action
    candidate: Candidate | None
    candidates: tuple[Candidate, ...]
    reason: str
    late: bool = False


@dataclass(frozen=True)
class MatchSettings:
    """Verification mode and thresholds; ValueError names a bad field."""
    mode: Mode = "hybrid"
    auto_confirm_threshold: int = 60
    review_threshold: int = 0
    tie_margin: int = 30
    name_similar_ratio: int = 80
    skew: timedelta = field(default=timedelta(minutes=5))
    grace: timedelta = field(default=timedelta(minutes=15))
    late_lookback: timedelta = field(default=timedelta(days=3))
    learn_after: int = 2  # staff confirmations that make a learned alias decisive
    names: NameRules = field(default_factory=NameRules, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        for name in ("auto_confirm_threshold", "review_threshold", "tie_margin",
                     "name_similar_ratio"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= 100:
                raise ValueError(f"{name} must be an integer 0-100, got {value!r}")
        for name in ("skew", "grace", "late_lookback"):
            if getattr(self, name) < timedelta(0):
                raise ValueError(f"{name} must not be negative")
        if not isinstance(self.learn_after, int) or not 1 <= self.learn_after <= 100:
            raise ValueError(f"learn_after must be an integer 1-100, got {self.learn_after!r}")




@dataclass(frozen=True)
class Learned:
    """What staff taught about one payer alias (a name key or a phone) and one customer.

    `kind`: "name" (the payer's name, as names.key() folds it) or "phone" (E.164).
    The customer is known by `customer_phone` (E.164) when the request had one, else by
    `customer_name` (names.key() of the customer's name). `confirmed` / `rejected`:
    how often staff confirmed or linked / rejected a payment of this alias for them.
    """
    kind: Literal["name", "phone"]
    alias: str
    customer_phone: str | None
    customer_name: str | None
    confirmed: int
    rejected: int
    shown: str = ""  # the alias as a payer last wrote it, for the evidence card
