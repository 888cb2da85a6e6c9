"""Pages reached from a mailed link, and the forms that send those links: email
verification (``/verify-email``), re-sending it, ``/forgot-password``, ``/reset-password``.

Every answer that could tell whether an address has an account is the same either way:
the services queue the same one row in both cases, and the sender decides.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, logout_user

from oauth.accounts import account_tokens, email_verification, password_reset
from oauth.accounts import users as accounts
from oauth.accounts.login import sign_in
from oauth.ratelimit import client_ip, throttle
from oauth.ratelimit.requests import limit_per_ip
from oauth.security import safe_next_path, sha256_hex
from oauth.web.forms import (
    ConfirmForm,
    ForgotPasswordForm,
    ResendVerificationForm,
    ResetPasswordForm,
)

bp = Blueprint("account", __name__)


def address_allowed(email: str) -> bool:
    """One more mail to ``email`` under MAIL_ADDRESS_RATE_LIMIT? Counted whether or not the
    address has an account, so the limit itself tells nothing."""
    limit = current_app.config["MAIL_ADDRESS_RATE_LIMIT"]
    key = f"mail/address/{sha256_hex(accounts.normalise_email(email))[:32]}"
    counter = throttle()
    if counter.retry_after(limit, key) is not None:
        return False
    counter.hit(limit, key)
    return True


def mail_sent_page(title: str, message: str, status: int = 200):
    return render_template("mail_sent.html", title=title, message=message), status


def _invalid_link(what: str):
    return render_template("link_invalid.html", what=what), 400


# --- email verification --------------------------------------------------------------------


@bp.route("/verify-email", methods=["GET", "POST"])
def verify_email():
    raw = request.values.get("token", "")
    token = email_verification.pending_link(raw)
    if token is None:
        return _invalid_link("verify")
    form = ConfirmForm()
    if request.method == "GET":
        # Mail scanners prefetch links: a GET only shows the button, it consumes nothing.
        return render_template("verify_email.html", form=form, token=raw, link=token)
    if not form.validate_on_submit():
        abort(400)
    try:
        user, used = email_verification.confirm(raw)
    except email_verification.LinkInvalid:
        return _invalid_link("verify")
    except accounts.AccountError as error:
        flash(str(error), "error")
        return _invalid_link("verify")
    if used.purpose == account_tokens.CHANGE_EMAIL:
        flash(f"Your email address is now {user.email}.", "success")
    else:
        flash(f"Thank you: {user.email} is confirmed.", "success")
    signed_in = current_user.is_authenticated and current_user.id == user.id
    if email_verification.mode() == "required" and not signed_in:
        # The contract: with verification required, sign-up signs in once the link is confirmed.
        sign_in(user, method="otp")
        signed_in = True
    if signed_in:
        return redirect(safe_next_path((used.context or {}).get("next"), url_for("auth.index")))
    return redirect(url_for("auth.login"))


@bp.route("/verify-email/resend", methods=["POST"])
@limit_per_ip("MAIL_IP_RATE_LIMIT")
def resend_verification():
    form = ResendVerificationForm()
    if not form.validate_on_submit():
        abort(400)
    if email_verification.mode() == "off":
        abort(404)
    if current_user.is_authenticated:
        user = current_user._get_current_object()
        if user.email_verified:
            flash(f"{user.email} is already confirmed.", "info")
        elif address_allowed(user.email):
            email_verification.resend_for(user)
            flash(f"We sent a new confirmation link to {user.email}.", "success")
        else:
            flash("We sent several links already: look for them, or try again later.", "error")
        return redirect(url_for("settings.profile"))
    email = accounts.normalise_email(form.email.data or "")
    if accounts.email_problem(email):
        abort(400)
    if address_allowed(email):
        email_verification.resend(email)
    return mail_sent_page(
        "Check your mail",
        f"If {email} belongs to an account whose address is not confirmed yet, we sent it a "
        "new confirmation link. Open it to continue.",
    )


# --- password reset ------------------------------------------------------------------------


@bp.route("/forgot-password", methods=["GET", "POST"])
@limit_per_ip("MAIL_IP_RATE_LIMIT")
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        email = accounts.normalise_email(form.email.data)
        problem = accounts.email_problem(email)
        if problem:
            form.email.errors.append(problem)
        else:
            if address_allowed(email):
                password_reset.request(email, ip=client_ip())
            return mail_sent_page(
                "Check your mail",
                f"If {email} belongs to an account, we sent it a link to choose a new password. "
                "The link works once, for one hour.",
            )
    elif request.method == "GET" and request.args.get("email"):
        form.email.data = request.args["email"][:320]
    status = 400 if form.errors else 200
    return render_template("forgot_password.html", form=form), status


@bp.route("/reset-password", methods=["GET", "POST"])
def reset_password():
    raw = request.values.get("token", "")
    if password_reset.pending_link(raw) is None:
        return _invalid_link("reset")
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            user = password_reset.reset(raw, form.password.data, ip=client_ip())
        except password_reset.LinkInvalid:
            return _invalid_link("reset")
        except accounts.AccountError as error:
            form.password.errors.append(str(error))
        else:
            if current_user.is_authenticated:
                sign_out_quietly()
            flash(
                f"Your password was changed and every session was signed out. "
                f"Sign in as {user.email} with the new password.",
                "success",
            )
            return redirect(url_for("auth.login", login_hint=user.email))
    status = 400 if form.errors else 200
    return render_template("reset_password.html", form=form, token=raw), status


def sign_out_quietly() -> None:
    """This browser's own session ends too (the reset already ended it server-side)."""
    logout_user()
    session.clear()
