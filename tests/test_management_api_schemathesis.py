"""Schemathesis against the live management API: every operation of the served
openapi.json, with generated valid and invalid inputs and a token holding every scope.
Never a 5xx; status codes, content types, headers and bodies match the document."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks as openapi_checks

from oauth.accounts import consents, users
from oauth.api import ensure_builtin_api
from oauth.registry import apis, client_grants, clients
from oauth.storage.db import write_transaction
from oauth.tokens import keys
from tests.conftest import LiveServer
from tests.management_api_helpers import ManagementCaller

CHECKS = [
    not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
EXAMPLES = 4
# DELETE last, so the real resources seeded below live through the other operations.
ORDER = {"GET": 0, "POST": 1, "PATCH": 2, "DELETE": 3}


@pytest.fixture
def live(make_app):
    app = make_app(MANAGEMENT_API=True)
    with LiveServer(app) as server:
        with app.app_context():
            ensure_builtin_api()  # for the live server's issuer (its port is known only now)
        yield server


def _seed(app) -> dict[str, object]:
    """Real ids, so generated requests reach past the 404s too."""
    with app.app_context():
        client, _ = clients.create_client("Seeded", [], grant_types=["client_credentials"])
        web, _ = clients.create_client("Web", ["https://web.example/cb"])
        user = users.create_user("seed@example.com", "correct horse battery", via="admin")
        api = apis.create_api("https://seeded.example", "Seeded", ["read:x", "write:x"])
        grant = client_grants.grant(client, api, ["read:x"])
        with write_transaction():
            consents.remember(user, web.client_id, ["openid", "email"], "authenticated")
        consent_id = consents.Consent.get().id
        key = keys.add_key()
    return {
        "client_id": client.client_id,
        "user_id": user.id,
        "api_id": api.id,
        "grant_id": grant.id,
        "consent_id": consent_id,
        "kid": key.kid,
    }


def test_every_operation_survives_generated_inputs(live):
    caller = ManagementCaller(live.app, live.app.test_client())
    seeded = _seed(live.app)
    schema = schemathesis.openapi.from_url(live.url + "/api/v1/openapi.json")
    operations = sorted(
        (result.ok() for result in schema.get_all_operations()),
        key=lambda op: ORDER[op.method.upper()],
    )
    assert len(operations) >= 30
    headers = {"Authorization": f"Bearer {caller.token}"}
    seen: dict[str, set[int]] = {}

    for operation in operations:
        names = {p.name for p in operation.path_parameters}
        known = {name: seeded[name] for name in names if name in seeded}
        strategies = [operation.as_strategy(generation_mode=mode) for mode in MODES]
        if known:
            strategies.append(operation.as_strategy(path_parameters=known))

        @given(case=schemathesis_one_of(strategies))
        @settings(
            max_examples=EXAMPLES * len(strategies),
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            response = case.call_and_validate(base_url=live.url, headers=headers, checks=CHECKS)
            seen.setdefault(case.operation.label, set()).add(response.status_code)

        run()

    assert set(seen) == {op.label for op in operations}
    # generated inputs got past validation somewhere, not only 4xx everywhere
    assert any(code < 300 for codes in seen.values() for code in codes if code)


def schemathesis_one_of(strategies):
    first, *rest = strategies
    for strategy in rest:
        first = first | strategy
    return first
