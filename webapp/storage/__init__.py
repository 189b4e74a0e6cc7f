"""Storage: the database handle, the peewee models, hand-written hot-path SQL and the migrations.

Imports only webapp.config and libraries; everything above may import it.
"""
