"""OpenID Connect parameters of the authorization request (Core §3.1.2.1, §5.5).

- ``claims``: the JSON request for individual ID token and UserInfo claims. Unknown claims
  are ignored; what is kept is stored with the request and then the OAuth session, so the
  token endpoint and UserInfo see it. A requested claim counts as its scope on the consent
  page (``consent_scopes``), so nothing is released that the user was not shown.
- ``id_token_hint``: an ID token of ours (also an expired one) naming the user the client
  expects; a signed-in user who is someone else must sign in as that user.
- ``redirect_uri`` is required in an ``openid`` request, and unknown scope values there are
  ignored rather than refused.
"""

from __future__ import annotations

import json

from flask import current_app

from oauth.tokens import jose, keys
from oauth.tokens.claims import CLAIM_SCOPES

TARGETS = ("id_token", "userinfo")
HINT_LEEWAY = 10 * 365 * 24 * 3600  # an expired hint of ours still names its user


class ParameterError(ValueError):
    """A malformed OIDC parameter; the message is safe to send to the client."""


def parse_claims(raw: str | None) -> dict | None:
    """The ``claims`` parameter, normalised to {"id_token": {...}, "userinfo": {...}} with only
    the claims we know; None when absent. Raises ParameterError when it is not valid JSON of
    the Core §5.5 shape."""
    if raw is None or raw == "":
        return None
    try:
        document = json.loads(raw)
    except ValueError:
        raise ParameterError("'claims' is not valid JSON.") from None
    if not isinstance(document, dict):
        raise ParameterError("'claims' must be a JSON object.")
    parsed: dict = {}
    for target in TARGETS:
        members = document.get(target)
        if members is None:
            continue
        if not isinstance(members, dict):
            raise ParameterError(f"'claims.{target}' must be a JSON object.")
        parsed[target] = {
            name: _claim_request(target, name, request)
            for name, request in members.items()
            if name in CLAIM_SCOPES
        }
    return parsed


def _claim_request(target: str, name: str, request) -> dict:
    if request is None:
        return {}
    if not isinstance(request, dict):
        raise ParameterError(f"'claims.{target}.{name}' must be null or a JSON object.")
    kept = {}
    if "essential" in request:
        if not isinstance(request["essential"], bool):
            raise ParameterError(f"'claims.{target}.{name}.essential' must be true or false.")
        kept["essential"] = request["essential"]
    if "value" in request:
        kept["value"] = request["value"]
    if "values" in request:
        if not isinstance(request["values"], list):
            raise ParameterError(f"'claims.{target}.{name}.values' must be an array.")
        kept["values"] = request["values"]
    return kept


def requested(claims: dict | None, target: str) -> dict:
    """The claims asked for in ``target`` ("id_token" or "userinfo"): name -> request."""
    return dict((claims or {}).get(target) or {})


def implied_scopes(claims: dict | None) -> list[str]:
    """The scopes whose claims the ``claims`` request asks for."""
    found = []
    for target in TARGETS:
        for name in requested(claims, target):
            scope = CLAIM_SCOPES.get(name)
            if scope and scope not in found:
                found.append(scope)
    return found


def consent_scopes(scopes: list[str], claims: dict | None) -> list[str]:
    """What the consent page shows and a consent covers: the scopes and the claims' scopes."""
    return [*scopes, *(s for s in implied_scopes(claims) if s not in scopes)]


def expected_subject(claims: dict | None) -> str | None:
    """The ``sub`` the ID token must have (Core §5.5.1), when the request names one."""
    value = requested(claims, "id_token").get("sub", {}).get("value")
    return value if isinstance(value, str) else None


def hint_subject(hint: str | None) -> str | None:
    """The ``sub`` of an ``id_token_hint`` we issued (expired or not); None when absent.
    Raises ParameterError when it is not an ID token of ours."""
    if not hint:
        return None
    try:
        claims = jose.verify(hint, keys.verification_keys(), typ="JWT", leeway=HINT_LEEWAY)
    except jose.InvalidTokenError:
        raise ParameterError("'id_token_hint' is not a valid ID token of this server.") from None
    subject = claims.get("sub")
    if claims.get("iss") != current_app.config["ISSUER"] or not isinstance(subject, str):
        raise ParameterError("'id_token_hint' is not a valid ID token of this server.")
    return subject


def parameters(args, scopes: list[str]) -> tuple[dict | None, str | None]:
    """The ``claims`` request and the subject the client expects (``id_token_hint``, or a
    ``sub`` value in ``claims``): OpenID Connect requests only."""
    if "openid" not in scopes:
        return None, None
    claims = parse_claims(args.get("claims"))
    hinted = hint_subject(args.get("id_token_hint"))
    named = expected_subject(claims)
    if hinted and named and hinted != named:
        raise ParameterError("id_token_hint and the requested sub name different users.")
    return claims, hinted or named
