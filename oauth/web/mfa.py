"""Second factors in the browser: the second step of a sign-in (/login/mfa) and the TOTP
section of /settings/security (enrol with a QR code, recovery codes, remove).

/login/mfa serves two people: someone whose password was right a moment ago (nobody is signed
in yet: ``accounts/login.second_step_user``), and a signed-in user asked for a second factor
(``acr_values=aal2``, a client with ``require_mfa``: a step-up). A user with no factor who
must have one is sent to enrol on /settings/security, and comes back through ``next``.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from oauth.accounts import mfa, passwords
from oauth.accounts.login import current_level, finish_second_step, second_step_user
from oauth.ratelimit.passwords import Throttled, guarded
from oauth.security import safe_next_path
from oauth.storage.models import User
from oauth.tokens.claims import AAL2, RECOVERY_METHOD
from oauth.web.forms import SecondFactorForm, TotpConfirmForm, TotpDisableForm

bp = Blueprint("mfa", __name__)


def _next_path() -> str:
    return safe_next_path(request.values.get("next"), url_for("auth.index"))


def _throttled_page(template: str, throttled: Throttled, **context):
    flash(f"Too many failed attempts. Try again in {throttled.retry_after} seconds.", "error")
    return render_template(template, **context), 429, {"Retry-After": str(throttled.retry_after)}


def _who() -> tuple[User | None, bool]:
    """(the user to check, whether it is a step-up of a signed-in user)."""
    if current_user.is_authenticated:
        return current_user._get_current_object(), True
    return second_step_user(), False


@bp.route("/login/mfa", methods=["GET", "POST"])
def login_mfa():
    next_path = _next_path()
    user, step_up = _who()
    if user is None:
        flash("Your sign-in took too long or was not started. Sign in again.", "info")
        return redirect(url_for("auth.login", next=next_path))
    if step_up and current_level() == AAL2:
        return redirect(next_path)
    if not mfa.has_second_factor(user):
        if step_up:
            flash("This application asks for a second factor: set up an authenticator app.", "info")
            return redirect(url_for("settings.security", next=next_path))
        return redirect(url_for("auth.login", next=next_path))
    form = SecondFactorForm()
    form.next.data = next_path
    context = {"form": form, "next_path": next_path, "step_up": step_up}
    if form.validate_on_submit():
        try:
            method = guarded(user.email, lambda: mfa.verify(user, form.code.data))
        except Throttled as throttled:
            return _throttled_page("login_mfa.html", throttled, **context)
        if method is not None:
            finish_second_step(user, method)
            if method == RECOVERY_METHOD:
                left = mfa.recovery_codes_left(user)
                flash(f"You used a recovery code: {left} left.", "info")
            return redirect(next_path)
        form.code.errors.append("That code is not right, or was already used.")
    elif request.method == "POST":
        return render_template("login_mfa.html", **context), 400
    return render_template("login_mfa.html", **context)


# --- /settings/security: TOTP ------------------------------------------------------------------


def security_context(user: User) -> dict:
    """What the security page shows about second factors."""
    return {
        "totp_enabled": mfa.totp_factor(user) is not None,
        "recovery_codes_left": mfa.recovery_codes_left(user),
        "totp_disable_form": TotpDisableForm(),
        "mfa_next": safe_next_path(request.args.get("next"), ""),
    }


def _no_store(page, status: int = 200):
    response = make_response(page, status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _setup_page(user: User, secret: str, form: TotpConfirmForm, status: int = 200):
    uri = mfa.provisioning_uri(secret, user)
    page = render_template(
        "totp_setup.html",
        form=form,
        secret=secret,
        secret_groups=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        qr_code=mfa.qr_code_data_uri(uri),
        otpauth_uri=uri,
    )
    return _no_store(page, status)


@bp.route("/settings/security/totp", methods=["GET", "POST"])
@login_required
def totp_setup():
    """GET: the enrolment in progress; POST: start one (a new secret)."""
    user = current_user._get_current_object()
    form = TotpConfirmForm()
    form.next.data = safe_next_path(request.values.get("next"), "")
    if request.method == "POST":
        try:
            secret = mfa.start_enrolment(user)
        except mfa.MfaError as error:
            flash(str(error), "error")
            return redirect(url_for("settings.security"))
    else:
        secret = mfa.pending_secret(user)
        if secret is None:
            return redirect(url_for("settings.security"))
    return _setup_page(user, secret, form)


@bp.route("/settings/security/totp/confirm", methods=["POST"])
@login_required
def totp_confirm():
    user = current_user._get_current_object()
    form = TotpConfirmForm()
    secret = mfa.pending_secret(user)
    if secret is None:
        flash("Start the set-up again.", "error")
        return redirect(url_for("settings.security"))
    if not form.validate_on_submit():
        return _setup_page(user, secret, form, 400)
    try:
        codes = guarded(user.email, lambda: mfa.confirm_enrolment(user, form.code.data))
    except Throttled as throttled:
        flash(f"Too many failed attempts. Try again in {throttled.retry_after} seconds.", "error")
        return _setup_page(user, secret, form, 429)
    if codes is None:
        form.code.errors.append("That code is not right. Check the app and try again.")
        return _setup_page(user, secret, form, 400)
    finish_second_step(user, "totp")  # the code was a second factor: this browser is aal2
    next_path = safe_next_path(form.next.data, url_for("settings.security"))
    flash("Authenticator app set up.", "success")
    return _no_store(render_template("recovery_codes.html", codes=codes, next_path=next_path))


def _proven(user: User, form: TotpDisableForm) -> bool | None:
    """The password or a second-factor code, under the sign-in limits (raises Throttled)."""
    if form.password.data:
        password = form.password.data
        return guarded(user.email, lambda: passwords.verify_password(user.password_hash, password))
    if form.code.data:
        code = form.code.data
        return guarded(user.email, lambda: mfa.verify(user, code) is not None)
    return None


def _proof_or_page(user: User, form: TotpDisableForm):
    """None when proven, else the answer to send (a flash and the security page)."""
    if not form.validate_on_submit():
        abort(400)
    try:
        proven = _proven(user, form)
    except Throttled as throttled:
        message = f"Too many failed attempts. Try again in {throttled.retry_after} seconds."
        page = render_template("error.html", code=429, title="Too many attempts", message=message)
        return page, 429, {"Retry-After": str(throttled.retry_after)}
    if proven is None:
        flash("Enter your current password or a code from your app.", "error")
    elif not proven:
        flash("That password or code is not right.", "error")
    else:
        return None
    return redirect(url_for("settings.security"))


@bp.route("/settings/security/totp/disable", methods=["POST"])
@login_required
def totp_disable():
    user = current_user._get_current_object()
    answer = _proof_or_page(user, TotpDisableForm())
    if answer is not None:
        return answer
    mfa.disable_totp(user)
    flash("Authenticator app removed. Sign-in asks for your password only.", "success")
    return redirect(url_for("settings.security"))


@bp.route("/settings/security/recovery-codes", methods=["POST"])
@login_required
def recovery_codes():
    user = current_user._get_current_object()
    answer = _proof_or_page(user, TotpDisableForm())
    if answer is not None:
        return answer
    try:
        codes = mfa.regenerate_recovery_codes(user)
    except mfa.MfaError as error:
        flash(str(error), "error")
        return redirect(url_for("settings.security"))
    next_path = url_for("settings.security")
    return _no_store(render_template("recovery_codes.html", codes=codes, next_path=next_path))
