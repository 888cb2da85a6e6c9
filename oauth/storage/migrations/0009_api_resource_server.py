"""The client an API's resource server authenticates as (introspection, issue 9 item 11)."""

from peewee import CharField, ForeignKeyField, Model
from playhouse.migrate import migrate


def up(migrator, db):
    class Client(Model):
        client_id = CharField(primary_key=True, max_length=64)

        class Meta:
            database = db
            table_name = "client"

    resource_server = ForeignKeyField(
        Client, field=Client.client_id, null=True, on_delete="SET NULL"
    )
    migrate(migrator.add_column("api", "resource_server_id", resource_server))
