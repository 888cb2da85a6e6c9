"""``/oauth/logout``: OIDC RP-Initiated Logout (the ``end_session_endpoint``).

A relying party sends the browser here (GET, or a form POST without our CSRF token: the
blueprint is exempt from the global check). When the request needs the user's confirmation
(``protocol/logout.needs_confirmation``) the page shows a form that posts the same parameters
back with a CSRF token and ``decision=logout`` (or ``stay``)."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request
from flask_login import current_user

from oauth.protocol import logout as service
from oauth.web.forms import ConfirmForm

bp = Blueprint("logout", __name__)

NO_STORE = {"Cache-Control": "no-store"}


def _signed_in_user():
    return current_user._get_current_object() if current_user.is_authenticated else None


def _done(logout_request: service.LogoutRequest, *, signed_out: bool):
    location = service.redirect_location(logout_request)
    if location is not None:
        return redirect(location, 303)
    page = render_template("logged_out.html", signed_out=signed_out)
    return page, 200, NO_STORE


def _confirm_page(logout_request: service.LogoutRequest, user, status: int = 200):
    page = render_template(
        "logout_confirm.html",
        form=ConfirmForm(),
        client=logout_request.client,
        parameters=logout_request.parameters,
        other_user=user is not None and logout_request.hint_sub not in (None, user.id),
        user=user,
    )
    return page, status, NO_STORE


@bp.route("/oauth/logout", methods=["GET", "POST"])
def end_session():
    try:
        logout_request = service.parse(request.values)
    except service.LogoutError as error:
        page = render_template(
            "error.html", code=400, title="Cannot sign out", message=error.message
        )
        return page, 400, NO_STORE
    user = _signed_in_user()
    decision = request.form.get("decision") if request.method == "POST" else None
    if decision is not None:  # the answer to our confirmation page: CSRF-checked
        if not ConfirmForm().validate_on_submit():
            return _confirm_page(logout_request, user, 400)
        if decision != "logout":
            return _done(logout_request, signed_out=False)
    elif service.needs_confirmation(logout_request, user):
        return _confirm_page(logout_request, user)
    service.perform(logout_request, user)
    return _done(logout_request, signed_out=True)
