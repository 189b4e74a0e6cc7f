"""The domain: every business rule and every change of state (money only through domain.ledger).

Imports storage, plumbing and config; never Flask views, the API, jobs or the sandbox.
"""
