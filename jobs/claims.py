"""Customers' "I've paid" claims: check one again once the sources had time to bring its payment in."""
from __future__ import annotations

from jobs import job
from webapp.domain import claims


@job
def check(claim_id: int) -> str:
    """Match claim `claim_id` against the payments seen now (webapp.domain.claims.check); its status."""
    return claims.check(claim_id)
