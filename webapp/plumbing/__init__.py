"""Plumbing: the RQ job queue (connection, enqueueing, the recurring schedule) and the dev stack.

Imports webapp.config and webapp.storage only; the domain and the edges may import it.
"""
