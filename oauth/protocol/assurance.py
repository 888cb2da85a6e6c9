"""Which authorization requests need a second factor (issue 10).

``acr_values=aal2`` at /oauth/authorize, or a client registered with ``require_mfa``, asks
for a sign-in with a second factor. A browser whose sign-in used none (its ``amr``, in the
signed cookie, as ``authorize.approve`` records it on the code) is sent to /login/mfa first,
or, with ``prompt=none``, answered ``interaction_required``.
"""

from __future__ import annotations

from flask import session

from oauth.storage.models import AuthorizationRequest
from oauth.tokens.claims import AAL2, assurance_level


def second_factor_required(row: AuthorizationRequest) -> bool:
    return AAL2 in (row.acr_values or "").split() or bool(row.client.require_mfa)


def needs_second_factor(row: AuthorizationRequest) -> bool:
    """The request needs a second factor and this browser's sign-in did not use one."""
    return second_factor_required(row) and assurance_level(session.get("amr")) != AAL2
