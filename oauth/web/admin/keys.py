"""Admin pages for signing keys: add a standby key, rotate, revoke."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, url_for

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
    key = _key_action("rotate", lambda alg: keys.rotate(alg, actor_id=actor()))
    if key is not None:
        flash(
            f"Key {key.kid} ({key.alg}) is now the signing key; every algorithm's key turns "
            "over together (unless one was chosen) and the old ones stay published.",
            "success",
        )
    return redirect(url_for("admin.keys_list"))


def keys_revoke(kid: str):
    confirmed()
    try:
        key = keys.revoke(kid[:64], actor_id=actor())
    except keys.KeyServiceError as error:
        flash(str(error), "error")
    else:
        flash(f"Key {key.kid} revoked: tokens it signed no longer verify.", "success")
    return redirect(url_for("admin.keys_list"))
