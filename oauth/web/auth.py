"""Sign-in, sign-up and sign-out pages."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from oauth.accounts import email_verification, mfa
from oauth.accounts import users as accounts
from oauth.accounts.login import begin_second_step, sign_in, sign_out
from oauth.protocol.pending import requesting_client
from oauth.ratelimit.passwords import Throttled, guarded
from oauth.ratelimit.requests import limit_per_ip
from oauth.security import safe_next_path
from oauth.web.account import address_allowed, mail_sent_page
from oauth.web.forms import ConfirmForm, LoginForm, ResendVerificationForm, SignupForm

bp = Blueprint("auth", __name__)


def _page(template: str, status: int, headers: dict, **context):
    return render_template(template, **context), status, headers


def requesting_app(next_path: str) -> str | None:
    """The name of the application whose authorization request waits behind this page
    ("to continue to Photo Printer"), from the ``next`` URL that resumes it."""
    parts = urlsplit(next_path)
    if parts.path not in (url_for("oauth.authorize"), url_for("oauth.consent")):
        return None
    args = MultiDict(parse_qsl(parts.query, keep_blank_values=True))
    user = current_user if current_user.is_authenticated else None
    client = requesting_client(args, user)
    return client.name if client is not None else None


@bp.context_processor
def _requesting_app():
    next_path = safe_next_path(request.values.get("next"), "")
    return {"requesting_app": requesting_app(next_path) if next_path else None}


@bp.route("/")
def index():
    if current_user.is_authenticated:
        return redirect(url_for("settings.profile"))
    return redirect(url_for("auth.login"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    next_path = safe_next_path(request.values.get("next"), url_for("auth.index"))
    if request.method == "GET":
        if current_user.is_authenticated and not request.args.get("reauth"):
            return redirect(next_path)
        form.next.data = next_path
        if request.args.get("login_hint") and not form.email.data:
            form.email.data = request.args["login_hint"][:320]
    if form.validate_on_submit():
        email, password = form.email.data, form.password.data
        try:
            user = guarded(email, lambda: accounts.authenticate(email, password))
        except accounts.EmailNotVerified as unverified:
            # Said only after the right password: it tells nothing about who has an account.
            flash(
                f"Confirm your email address first: open the link we mailed to {unverified.email}.",
                "error",
            )
            return render_template(
                "login.html",
                form=form,
                next_path=next_path,
                unverified_email=unverified.email,
                resend_form=ResendVerificationForm(email=unverified.email),
            )
        except Throttled as throttled:
            flash(
                f"Too many failed attempts. Try again in {throttled.retry_after} seconds.", "error"
            )
            return _page(
                "login.html",
                429,
                {"Retry-After": str(throttled.retry_after)},
                form=form,
                next_path=next_path,
            )
        if user is not None and mfa.has_second_factor(user):
            begin_second_step(user, ["pwd"])  # nobody is signed in until /login/mfa
            return redirect(url_for("mfa.login_mfa", next=next_path))
        if user is not None:
            sign_in(user)
            return redirect(next_path)
        flash("Invalid email or password.", "error")
    elif request.method == "POST":
        flash("Enter your email and password.", "error")
    return render_template("login.html", form=form, next_path=next_path)


@bp.route("/signup", methods=["GET", "POST"])
@limit_per_ip("SIGNUP_RATE_LIMIT")
def signup():
    if not current_app.config["ALLOW_SIGNUP"]:
        abort(404)
    form = SignupForm()
    next_path = safe_next_path(request.values.get("next"), url_for("auth.index"))
    if request.method == "GET":
        form.next.data = next_path
    if form.validate_on_submit():
        try:
            result = email_verification.sign_up(
                form.email.data, form.password.data, name=form.name.data or "", next_path=next_path
            )
        except accounts.AccountError as error:
            if accounts.find_by_email(form.email.data or ""):
                form.email.errors = [str(error)]  # next to the field it is about
            else:
                flash(str(error), "error")  # a plugin's refusal: about the whole sign-up
        else:
            if result.user is not None:
                sign_in(result.user)
                flash("Welcome! Your account is ready.", "success")
                return redirect(next_path)
            return _check_your_mail(form.email.data, result.existing)
    return render_template("signup.html", form=form, next_path=next_path), (
        400 if form.errors else 200
    )


def _check_your_mail(email: str, existing):
    """EMAIL_VERIFICATION=required: one answer whether or not the address had an account."""
    email = accounts.normalise_email(email)
    if existing is not None and address_allowed(email):
        email_verification.notify_signup_attempt(existing)
    return mail_sent_page(
        "Check your mail",
        f"We sent a link to {email}. Open it to confirm your address and finish signing up; "
        "until then you cannot sign in.",
    )


@bp.route("/logout", methods=["POST"])
def logout():
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    sign_out()
    flash("You have been signed out.", "info")
    return redirect(url_for("auth.login"))
