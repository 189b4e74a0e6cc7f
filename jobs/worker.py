"""The RQ worker class: builds the app once in the parent, so forked work horses inherit it.

Used as `rq worker -w jobs.worker.Worker --with-scheduler fast default slow`.
"""
from __future__ import annotations

from rq.worker import Worker as RQWorker

from jobs import bootstrap


class Worker(RQWorker):
    def __init__(self, *args, **kwargs):
        bootstrap()
        super().__init__(*args, **kwargs)
