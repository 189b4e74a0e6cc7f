"""Server-side login sessions (a logout ends one for real); user.session_version goes."""
from peewee import *


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = "user"

    class LoginSession(Model):
        user = ForeignKeyField(User, on_delete="CASCADE")
        key_hash = CharField(unique=True)
        created_at = DateTimeField()
        last_seen_at = DateTimeField()
        ended_at = DateTimeField(null=True)
        end_reason = CharField(null=True)
        ip = CharField(null=True)
        user_agent = CharField(default="")

        class Meta:
            database = db
            table_name = "login_session"
            indexes = ((("user", "ended_at"), False),)

    db.create_tables([LoginSession])
    migrator.migrate(migrator.drop_column("user", "session_version"))


def down(migrator, db):
    migrator.migrate(
        migrator.drop_table("login_session"),
        migrator.add_column("user", "session_version", IntegerField(default=1)),
    )
