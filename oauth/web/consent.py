"""The browser side of OAuth: /oauth/authorize and the consent page."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user

from oauth.protocol import authorize as authorization
from oauth.protocol import oidc, resources
from oauth.protocol.authorize import AuthorizationPageError, RedirectError
from oauth.protocol.responses import error_location
from oauth.ratelimit.requests import limit_metadata_fetches, limit_per_ip
from oauth.registry import metadata_documents
from oauth.scopes import describe
from oauth.storage.db import write_transaction
from oauth.storage.models import Client
from oauth.web.forms import ConsentForm

bp = Blueprint("oauth", __name__, url_prefix="/oauth")


def _page_error(error: AuthorizationPageError, code: int = 400):
    return render_template("error.html", code=code, title=error.title, message=error.message), code


def _user():
    return current_user._get_current_object() if current_user.is_authenticated else None


def _anonymous() -> bool:
    return not current_user.is_authenticated


@bp.route("/authorize", methods=["GET", "POST"])
@limit_per_ip("AUTHORIZE_RATE_LIMIT", methods=("GET", "POST"), when=_anonymous)
@limit_metadata_fetches
def authorize():
    # OIDC Core §3.1.2.1: a form POST is the same request as a GET with that query.
    args = request.form if request.method == "POST" else request.args
    user = _user()
    try:
        row = authorization.validate_request(args)
        if user is not None and row.expected_sub not in (None, user.id):
            return _other_user_expected(row, args)
        if user is not None:
            with write_transaction():
                authorization.store(row, user)
    except AuthorizationPageError as error:
        return _page_error(error)
    except RedirectError as error:
        return redirect(error.location())
    if user is None:
        # Nothing is stored for an anonymous browser: the sign-in page sends it back here.
        resume = url_for("oauth.authorize") + "?" + authorization.resume_query(args, row)
        return _continue(row, next_path=resume)
    return _continue(row)


def _other_user_expected(row, args):
    """id_token_hint (or a requested sub) names someone else than the signed-in user: that
    user must sign in (prompt=none: login_required); nothing is stored meanwhile."""
    if "none" in (row.prompt or "").split():
        description = "The signed-in user is not the one the request names."
        if authorization.untrusted(row.client):
            return _page_error(AuthorizationPageError("Sign-in needed", description))
        return redirect(error_location(row.redirect_uri, "login_required", description, row.state))
    resume = url_for("oauth.authorize") + "?" + authorization.resume_query(args, row)
    return redirect(url_for("auth.login", next=resume, reauth="1"))


def _continue(row, *, render_consent: bool = False, next_path: str | None = None):
    try:
        outcome = authorization.decide(row, _user())
    except AuthorizationPageError as error:
        return _page_error(error, 403)
    if outcome.kind == "redirect":
        return redirect(outcome.location)
    consent_path = url_for("oauth.consent", authorization_id=row.id)
    if outcome.kind == "login":
        params = {"next": next_path or consent_path}
        if _user() is not None:
            params["reauth"] = "1"
        if row.login_hint:
            params["login_hint"] = row.login_hint
        return redirect(url_for("auth.login", **params))
    if outcome.kind == "mfa":
        return redirect(url_for("mfa.login_mfa", next=next_path or consent_path))
    if not render_consent:
        return redirect(consent_path)
    form = ConsentForm()
    client = Client.get_by_id(row.client_id)
    return render_template(
        "consent.html",
        form=form,
        request_row=row,
        client=client,
        document_host=metadata_documents.host_of(client),
        scopes=describe(oidc.consent_scopes(row.scopes, row.claims)),
        api_name=resources.api_name(row.resource) if row.resource else None,
        redirect_host=_host(row.redirect_uri),
    )


def _host(uri: str) -> str:
    parts = urlsplit(uri)
    return parts.netloc or f"{parts.scheme}:"


@bp.route("/consent", methods=["GET", "POST"])
def consent():
    try:
        row = authorization.load_pending(request.args.get("authorization_id"))
    except AuthorizationPageError as error:
        return _page_error(error)
    if request.method == "GET":
        return _continue(row, render_consent=True)
    form = ConsentForm()
    if not form.validate_on_submit() or form.decision.data not in ("approve", "deny"):
        abort(400)
    user = _user()
    if (
        user is None
        or authorization.needs_login(row, user)
        or authorization.needs_second_factor(row)
    ):
        return _continue(row)
    if row.user_id not in (None, user.id):
        return _page_error(
            AuthorizationPageError(
                "Wrong account", "This authorization request belongs to another user."
            ),
            403,
        )
    try:
        if form.decision.data == "approve":
            location = authorization.approve(row, user)
        else:
            location = authorization.deny(row, user)
    except AuthorizationPageError as error:
        return _page_error(error)
    return redirect(location)
