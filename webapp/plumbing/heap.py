"""Start-up objects out of the garbage collector's way, in a long-running process.

A process (web, rq worker, mailbox watcher, scheduler) builds its app once: ~100k objects
(modules, routes, models, templates, parsers) that live as long as it does. CPython's cyclic
collector walks every one of them in each full collection, and a busy process triggers many:
in the ingest loop (bench/match.py) that was ~10 % of the CPU a payment took. gc.freeze() moves
what exists now to a generation the collector never walks (Python docs, gc.freeze); what the
process allocates afterwards is collected as before. Call once, when start-up is over.
"""
from __future__ import annotations

import gc


def freeze_startup() -> int:
    """Collect start-up's garbage, then freeze what is left; returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
