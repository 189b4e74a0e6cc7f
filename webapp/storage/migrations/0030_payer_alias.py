"""What staff taught by confirming, linking and rejecting: payer aliases (names, phones) per customer."""
from peewee import *


def up(migrator, db):
    class PayerAlias(Model):
        kind = CharField()
        alias = CharField()
        shown = CharField(default="")
        customer = CharField()
        customer_phone = CharField(null=True)
        customer_name = CharField(null=True)
        customer_label = CharField(default="")
        confirmed = IntegerField(default=0)
        rejected = IntegerField(default=0)
        last_payment = IntegerField(null=True)
        created_at = DateTimeField()
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "payer_alias"
            indexes = ((("kind", "alias", "customer"), True), (("customer",), False))

    db.create_tables([PayerAlias])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("payer_alias"))
