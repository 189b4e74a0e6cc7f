"""Run one ledger call in a separate process, released at the same moment as its rival."""
from __future__ import annotations


def race(environ: dict, barrier, results, call: str, args: tuple, kwargs: dict) -> None:
    """Build the app from `environ`, wait at `barrier`, run ledger.<call>(*args, **kwargs); report the outcome."""
    from webapp import create_app
    from webapp.config import load_settings
    from webapp.domain import ledger
    from webapp.storage import db

    app = create_app(load_settings(environ))
    with app.app_context(), db.database.connection_context():
        barrier.wait(timeout=60)
        try:
            outcome = getattr(ledger, call)(*args, **kwargs)
            if call == "ingest_payment":
                results.put(("ok", outcome.payment.id, outcome.created, outcome.payment.status))
            elif call == "observe_request":
                results.put(("ok", outcome.change))
            else:
                results.put(("ok", getattr(outcome, "id", outcome)))
        except ledger.LedgerError as exc:
            results.put(("refused", exc.code))
        except Exception as exc:  # reported to the test, which fails with it
            results.put(("crashed", f"{type(exc).__name__}: {exc}"))
