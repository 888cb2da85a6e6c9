"""The signed-in user's own pages: profile, security, authorized apps."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, logout_user

from oauth.accounts import consents, deletion, email_verification, mfa, passwords
from oauth.accounts import users as accounts
from oauth.accounts.login import current_session_id, sign_in
from oauth.ratelimit.passwords import Throttled, guarded
from oauth.registry.clients import get_client
from oauth.storage.models import User
from oauth.web.account import address_allowed
from oauth.web.forms import (
    ConfirmForm,
    DeleteAccountForm,
    EmailChangeForm,
    PasswordChangeForm,
    ProfileForm,
    ResendVerificationForm,
)
from oauth.web.mfa import security_context

bp = Blueprint("settings", __name__, url_prefix="/settings")


def _user() -> User:
    return current_user._get_current_object()


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile():
    user = _user()
    form = ProfileForm(obj=user)
    if form.validate_on_submit():
        try:
            accounts.update_profile(
                user, name=form.name.data, phone=form.phone.data, picture=form.picture.data
            )
        except accounts.AccountError as error:
            flash(str(error), "error")
        else:
            flash("Profile saved.", "success")
            return redirect(url_for("settings.profile"))
    status = 400 if request.method == "POST" else 200
    return _profile_page(form, EmailChangeForm(formdata=None), status)


def _profile_page(form: ProfileForm, email_form: EmailChangeForm, status: int):
    return render_template(
        "profile.html",
        form=form,
        email_form=email_form,
        resend_form=ResendVerificationForm(formdata=None),
        password_form=PasswordChangeForm(formdata=None),
    ), status


@bp.route("/email", methods=["POST"])
@login_required
def change_email():
    """A new address: proven by the current password, confirmed from the new mailbox."""
    user = _user()
    email_form = EmailChangeForm()
    if email_form.validate_on_submit():
        problem = email_verification.change_problem(user, email_form.new_email.data)
        if problem:  # shown with the password's error, if any: every field error at once
            email_form.new_email.errors.append(problem)
        try:
            proven = _current_password_proven(user, email_form.current_password.data)
        except Throttled as throttled:
            email_form.current_password.errors.append(
                f"Too many failed attempts. Try again in {throttled.retry_after} seconds."
            )
            page, _ = _profile_page(ProfileForm(obj=user, formdata=None), email_form, 429)
            return page, 429, {"Retry-After": str(throttled.retry_after)}
        if not proven:
            email_form.current_password.errors.append("Current password is incorrect.")
        elif not problem and _request_change(user, email_form):
            return redirect(url_for("settings.profile"))
    return _profile_page(ProfileForm(obj=user, formdata=None), email_form, 400)


def _request_change(user: User, email_form: EmailChangeForm) -> bool:
    """Mail the link (or, with verification off, change at once); False with a field error."""
    if not address_allowed(email_form.new_email.data):
        email_form.new_email.errors.append("Too many mails to this address; try again later.")
        return False
    try:
        new_email = email_verification.request_change(user, email_form.new_email.data)
    except accounts.AccountError as error:
        email_form.new_email.errors.append(str(error))
        return False
    if email_verification.mode() == "off":
        flash(f"Your email address is now {new_email}.", "success")
    else:
        flash(f"We sent a link to {new_email}. Your address changes when you open it.", "success")
    return True


def _security_page(
    password_form: PasswordChangeForm | None = None,
    status: int = 200,
    delete_form: DeleteAccountForm | None = None,
):
    return render_template(
        "security.html",
        password_form=password_form or PasswordChangeForm(formdata=None),
        sign_out_form=ConfirmForm(),
        delete_form=delete_form or DeleteAccountForm(formdata=None),
        delete_needs_code=mfa.has_second_factor(_user()),
        **security_context(_user()),
    ), status


@bp.route("/security")
@login_required
def security():
    return _security_page()


def _current_password_proven(user: User, password: str) -> bool:
    """The current-password check, under the same limits as sign-in (raises Throttled)."""
    return guarded(user.email, lambda: passwords.verify_password(user.password_hash, password))


@bp.route("/password", methods=["POST"])
@login_required
def change_password():
    user = _user()
    password_form = PasswordChangeForm()
    if password_form.validate_on_submit():
        try:
            proven = _current_password_proven(user, password_form.current_password.data)
        except Throttled as throttled:
            password_form.current_password.errors.append(
                f"Too many failed attempts. Try again in {throttled.retry_after} seconds."
            )
            page, _ = _security_page(password_form)
            return page, 429, {"Retry-After": str(throttled.retry_after)}
        if not proven:
            password_form.current_password.errors.append("Current password is incorrect.")
        else:
            try:
                accounts.set_password(user, password_form.new_password.data, via="settings")
            except accounts.AccountError as error:
                password_form.new_password.errors.append(str(error))
            else:
                sign_in(user)  # every session ended: this browser gets a new one
                flash("Password changed. Other sessions were signed out.", "success")
                return redirect(url_for("settings.security"))
    return _security_page(password_form, 400)


@bp.route("/security/sign-out-others", methods=["POST"])
@login_required
def sign_out_others():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    # This browser keeps its session, and with it when and how the user last proved who they
    # are (OIDC auth_time/amr): signing out others is not a new authentication.
    accounts.sign_out_other_sessions(_user(), keep=current_session_id())
    flash("Every other session was signed out.", "success")
    return redirect(url_for("settings.security"))


def _deletion_proven(user: User, form: DeleteAccountForm) -> bool:
    """The password and, when the account has one, the second factor, each through the
    limits (raises Throttled); a failure is put on its field."""
    code = (form.code.data or "").strip()
    needs_code = mfa.has_second_factor(user)
    if needs_code and not code:  # said with the password's error: every field error at once
        form.code.errors.append("Enter a code from your authenticator app, or a recovery code.")
    if not _current_password_proven(user, form.password.data):
        form.password.errors.append("Current password is incorrect.")
        return False
    if not needs_code:
        return True
    if code and guarded(user.email, lambda: mfa.verify(user, code) is not None):
        return True
    if code:
        form.code.errors.append("That code is not right, or was already used.")
    return False


@bp.route("/security/delete", methods=["POST"])
@login_required
def delete_account():
    user = _user()
    form = DeleteAccountForm()
    if form.validate_on_submit():
        try:
            proven = _deletion_proven(user, form)
        except Throttled as throttled:
            form.password.errors.append(
                f"Too many failed attempts. Try again in {throttled.retry_after} seconds."
            )
            page, _ = _security_page(delete_form=form)
            return page, 429, {"Retry-After": str(throttled.retry_after)}
        if proven:
            try:
                deletion.delete_account(user, via="settings")
            except accounts.AccountError as error:
                flash(str(error), "error")
            else:
                # the browser session row went with the account: only the cookie is left
                logout_user()
                session.clear()
                flash("Your account was deleted.", "success")
                return redirect(url_for("auth.login"))
    return _security_page(status=400, delete_form=form)


@bp.route("/apps")
@login_required
def apps():
    return render_template("apps.html", grants=consents.list_user_grants(_user()))


# path: a metadata document client's id is a URL, slashes included
@bp.route("/apps/<path:client_id>/revoke", methods=["POST"])
@login_required
def revoke_app(client_id: str):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    client = get_client(client_id)
    if client is None or not consents.revoke_user_grant(_user(), client):
        abort(404)
    flash(f"Access for {client.name} was revoked.", "success")
    return redirect(url_for("settings.apps"))
