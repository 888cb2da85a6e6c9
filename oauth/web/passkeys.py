"""Passkey pages and their JSON calls (static/passkeys.js): add and remove passkeys on
/settings/security, sign in with one on /login, use one as the second step at /login/mfa. JSON bodies, base64url inside; CSRF through
the ``X-CSRFToken`` header (flask-wtf's CSRFProtect checks it like a form field)."""

from __future__ import annotations

import json

from flask import Blueprint, abort, flash, jsonify, redirect, request, url_for
from flask_login import current_user, login_required
from wtforms import PasswordField
from wtforms.validators import DataRequired

from oauth.accounts import passkeys, passwords
from oauth.accounts.login import (
    current_session_id,
    finish_second_step,
    second_step_user,
    sign_in,
)
from oauth.ratelimit.passwords import Throttled, guarded
from oauth.ratelimit.requests import limit_per_ip
from oauth.security import safe_next_path
from oauth.storage.models import User
from oauth.tokens.claims import WEBAUTHN_METHOD
from oauth.web.forms import Form

bp = Blueprint("passkeys", __name__)


class PasskeyRemoveForm(Form):
    current_password = PasswordField("Confirm with your password", validators=[DataRequired()])


@bp.app_context_processor
def _passkey_helpers():
    def passkey_list():
        if not current_user.is_authenticated:
            return []
        return passkeys.list_for(current_user)

    def passkey_mfa_available():
        user = _mfa_user()
        return user is not None and passkeys.has_passkeys(user)

    return {"passkey_list": passkey_list, "passkey_mfa_available": passkey_mfa_available}


def _mfa_user() -> User | None:
    """Whom /login/mfa asks: a signed-in user stepping up, or the one half-way signed in."""
    if current_user.is_authenticated:
        return current_user._get_current_object()
    return second_step_user()


def _error(message: str, status: int = 400, headers: dict | None = None):
    return jsonify(error=message), status, headers or {}


def _body() -> dict:
    if (request.content_length or 0) > passkeys.MAX_RESPONSE_LENGTH + 4096:
        abort(413)
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _credential(body: dict) -> str:
    credential = body.get("credential")
    return json.dumps(credential) if isinstance(credential, dict) else ""


def _throttled(throttled: Throttled):
    return _error(
        f"Too many failed attempts. Try again in {throttled.retry_after} seconds.",
        429,
        {"Retry-After": str(throttled.retry_after)},
    )


def _password_proven(password) -> bool:
    """The current-password check, under the sign-in limits (raises Throttled)."""
    user = current_user
    if not isinstance(password, str) or not password:
        return False
    return guarded(user.email, lambda: passwords.verify_password(user.password_hash, password))


def _options(options_json: str):
    response = jsonify(json.loads(options_json))
    response.headers["Cache-Control"] = "no-store"
    return response


# --- settings: add and remove -----------------------------------------------------------


@bp.route("/settings/security/passkeys/options", methods=["POST"])
@login_required
def register_options():
    body = _body()
    try:
        proven = _password_proven(body.get("password"))
    except Throttled as throttled:
        return _throttled(throttled)
    if not proven:
        return _error("Your password is incorrect.")
    try:
        options = passkeys.registration_options(
            current_user, name=body.get("name"), browser_session=current_session_id()
        )
    except passkeys.PasskeyError as error:
        return _error(str(error))
    return _options(options)


@bp.route("/settings/security/passkeys", methods=["POST"])
@login_required
def register_finish():
    body = _body()
    try:
        row = passkeys.finish_registration(
            current_user, _credential(body), browser_session=current_session_id()
        )
    except passkeys.PasskeyError as error:
        return _error(str(error))
    flash(f"Passkey “{row.name}” added.", "success")
    next_path = safe_next_path(body.get("next"), "")
    if next_path:  # sent here to enrol a second factor: prove it now, then carry on
        return jsonify(redirect=url_for("mfa.login_mfa", next=next_path))
    return jsonify(redirect=url_for("settings.security"))


@bp.route("/settings/security/passkeys/<int:passkey_id>/remove", methods=["POST"])
@login_required
def remove(passkey_id: int):
    form = PasskeyRemoveForm()
    if not form.validate_on_submit():
        flash("Enter your password to remove a passkey.", "error")
        return redirect(url_for("settings.security"))
    try:
        proven = _password_proven(form.current_password.data)
    except Throttled as throttled:
        flash(f"Too many failed attempts. Try again in {throttled.retry_after} seconds.", "error")
        return redirect(url_for("settings.security"))
    if not proven:
        flash("Your password is incorrect: the passkey was kept.", "error")
    elif passkeys.remove(current_user, passkey_id):
        flash("Passkey removed.", "success")
    else:
        abort(404)
    return redirect(url_for("settings.security"))


# --- sign-in without a password ---------------------------------------------------------


@bp.route("/login/passkey/options", methods=["POST"])
@limit_per_ip("PASSKEY_RATE_LIMIT")
def login_options():
    return _options(passkeys.authentication_options("login"))


@bp.route("/login/passkey", methods=["POST"])
@limit_per_ip("PASSKEY_RATE_LIMIT")
def login_finish():
    body = _body()
    next_path = safe_next_path(body.get("next"), url_for("auth.index"))
    try:
        row = passkeys.verify_assertion("login", _credential(body))
    except passkeys.PasskeyError as error:
        return _error(str(error))
    sign_in(row.user, method="webauthn")
    return jsonify(redirect=next_path)


# --- the second step at /login/mfa ------------------------------------------------------

EXPIRED = "Your sign-in took too long or was not started. Sign in again."


@bp.route("/login/mfa/passkey/options", methods=["POST"])
def mfa_options():
    user = _mfa_user()
    if user is None or not passkeys.has_passkeys(user):
        return _error(EXPIRED)
    return _options(passkeys.authentication_options("mfa", user))


@bp.route("/login/mfa/passkey", methods=["POST"])
def mfa_finish():
    body = _body()
    next_path = safe_next_path(body.get("next"), url_for("auth.index"))
    user = _mfa_user()
    if user is None:
        return _error(EXPIRED)
    answer, refused = _credential(body), []

    def check():
        try:
            return passkeys.verify_assertion("mfa", answer, user)
        except passkeys.PasskeyError as error:
            refused.append(str(error))
            return None

    try:
        row = guarded(user.email, check)
    except Throttled as throttled:
        return _throttled(throttled)
    if row is None:
        return _error(refused[0])
    finish_second_step(user, WEBAUTHN_METHOD)
    return jsonify(redirect=next_path)
