"""Admin pages for signing keys: add a standby key, rotate, revoke."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from oauth.security import lookup_key
from oauth.storage.models import SigningKey
from oauth.tokens import keys
from oauth.web.admin.common import actor, confirmed
from oauth.web.admin_forms import KeyForm


def keys_list():
    return render_template(
        "admin/keys.html",
        keys=list(reversed(keys.list_keys())),
        add_form=KeyForm(prefix="add"),
        rotate_form=KeyForm(prefix="rotate"),
        default_alg=current_app.config["SIGNING_ALG"],
        rotation_risk=keys.rotation_risk(keys.unannounced_algs()),
        max_age=keys.JWKS_MAX_AGE,
    )


def _risk_warning(alg: str | None) -> str | None:
    risk = keys.rotation_risk(keys.unannounced_algs(alg))
    if risk is None:
        return None
    return (
        f"Warning: {risk}. Next time, add a standby key first and rotate "
        f"{keys.JWKS_MAX_AGE} seconds later."
    )


def _key_action(prefix: str, operation) -> Any:
    form = KeyForm(prefix=prefix)
    if not form.validate_on_submit():
        abort(400)
    try:
        key = operation(form.alg.data or None)
    except keys.KeyServiceError as error:
        flash(str(error), "error")
    else:
        return key
    return None


def keys_add():
    key = _key_action("add", lambda alg: keys.add_key(alg, actor_id=actor()))
    if key is not None:
        flash(
            f"Standby key {key.kid} ({key.alg}) added: published now, signing after a rotation.",
            "success",
        )
    return redirect(url_for("admin.keys_list"))


def keys_rotate():
    warnings: list[str] = []

    def rotate(alg: str | None):
        warning = _risk_warning(alg)  # KeyServiceError (a bad alg) before anything changes
        key = keys.rotate(alg, actor_id=actor())
        warnings.extend([warning] if warning else [])
        return key

    key = _key_action("rotate", rotate)
    if key is not None:
        flash(
            f"Key {key.kid} ({key.alg}) is now the signing key; every algorithm's key turns "
            "over together (unless one was chosen) and the old ones stay published.",
            "success",
        )
        for warning in warnings:
            flash(warning, "info")
    return redirect(url_for("admin.keys_list"))


def keys_revoke(kid: str):
    """GET: what revoking the key means; POST (CSRF): revoke it (the service refuses the
    current key)."""
    kid = lookup_key(kid, 64)  # None: no kid we made (too long, a NUL PostgreSQL refuses)
    if request.method == "GET":
        key = SigningKey.get_or_none(SigningKey.kid == kid) if kid else None
        if key is None:
            abort(404)
        if key.state not in (keys.STANDBY, keys.PREVIOUS):
            flash(f"Key {key.kid} is {key.state}: it cannot be revoked now.", "error")
            return redirect(url_for("admin.keys_list"))
        return render_template(
            "admin/confirm_delete.html",
            title=f"Revoke signing key {key.kid}?",
            what=f"{key.kid} ({key.alg}, {key.state})",
            consequences=[
                "It leaves the JWKS: tokens it signed stop verifying everywhere.",
                "Its private part is erased.",
            ],
            action=url_for("admin.keys_revoke", kid=key.kid),
            back=url_for("admin.keys_list"),
            button="Revoke key",
        )
    confirmed()
    try:
        if kid is None:
            raise keys.KeyServiceError("no signing key with that kid")
        key = keys.revoke(kid, actor_id=actor())
    except keys.KeyServiceError as error:
        flash(str(error), "error")
    else:
        flash(f"Key {key.kid} revoked: tokens it signed no longer verify.", "success")
    return redirect(url_for("admin.keys_list"))
