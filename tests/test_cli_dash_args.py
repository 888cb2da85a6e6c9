"""DESIGN.md: "An argument that starts with ``-`` (a key id may) is still an argument:
``flask keys revoke -AbC`` works." The same for every id argument of every command group
(``OneLineErrorGroup`` makes its commands ``DashArgumentCommand``s); the keys are in
test_keys.py, the clients and the client grants here."""

from __future__ import annotations

import json

import pytest

from oauth.registry import apis, client_grants, clients
from oauth.storage.models import Client, ClientGrant

API = "https://api.dash.example"


def single_line_error(result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    assert fragment in result.output, result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def dashed_client(app, client_id: str) -> str:
    """A confidential client_credentials client whose id is ``client_id`` (ids are UUIDs
    today; a registry that hands out random base64url ids would start one in 64 with ``-``)."""
    with app.app_context():
        client, _secret = clients.create_client("Dash", [], grant_types=["client_credentials"])
        Client.update(client_id=client_id).where(Client.client_id == client.client_id).execute()
        apis.create_api(API, "Dash API", ["read:things", "write:things"])
    return client_id


@pytest.mark.parametrize("client_id", ["-cid", "--cid"])
def test_grant_rotate_revoke_delete_a_client_id_that_starts_with_a_dash(app, runner, client_id):
    dashed_client(app, client_id)

    granted = runner.invoke(args=["apis", "grant", client_id, API, "--scope", "read:things"])
    assert granted.exit_code == 0, granted.output
    assert f"({client_id}) on API {API}: read:things" in granted.output
    with app.app_context():
        client = Client.get_by_id(client_id)
        assert [g.scopes for g in client_grants.list_grants(client=client)] == [["read:things"]]

    rotated = runner.invoke(args=["clients", "rotate-secret", client_id, "--json", "--yes"])
    assert rotated.exit_code == 0, rotated.output
    assert json.loads(rotated.output)["client_id"] == client_id

    revoked = runner.invoke(args=["apis", "revoke", client_id, API, "--yes"])
    assert revoked.exit_code == 0, revoked.output
    with app.app_context():
        assert ClientGrant.select().count() == 0

    deleted = runner.invoke(args=["clients", "delete", client_id, "-y"])
    assert deleted.exit_code == 0, deleted.output
    with app.app_context():
        assert Client.get_or_none(Client.client_id == client_id) is None


def test_options_and_their_values_stay_options(app, runner):
    client_id = dashed_client(app, "-cid")
    # An option's value may start with "-" too; "--" still ends the options.
    granted = runner.invoke(args=["apis", "grant", "--scope=write:things", client_id, "--", API])
    assert granted.exit_code == 0, granted.output
    assert "write:things" in granted.output
    helped = runner.invoke(args=["clients", "rotate-secret", "--help"])
    assert helped.exit_code == 0 and "CLIENT_ID" in helped.output and "--json" in helped.output


def test_unknown_ids_and_options_are_one_line_errors(app, runner):
    dashed_client(app, "-cid")
    single_line_error(runner.invoke(args=["clients", "delete", "-nope"]), "no client with id -nope")
    single_line_error(
        runner.invoke(args=["apis", "grant", "-nope", API]), "no client with id -nope"
    )
    # Every argument slot is filled: an unknown option is still an unknown option.
    single_line_error(runner.invoke(args=["clients", "delete", "-cid", "--bogus"]), "--bogus")
    single_line_error(runner.invoke(args=["clients", "list", "--bogus"]), "No such option")
    with app.app_context():
        assert Client.get_or_none(Client.client_id == "-cid") is not None
