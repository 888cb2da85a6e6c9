"""Admin pages for users: list, edit, admin rights, disable, enable, verify the email, delete."""

from __future__ import annotations

import json
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from oauth.accounts import admin as user_admin
from oauth.accounts import consents, deletion, email_verification, mfa
from oauth.accounts.users import AccountError
from oauth.pagination import page_number
from oauth.storage.models import User
from oauth.web.admin.common import actor, confirmed
from oauth.web.admin_forms import UserEditForm


def _user_or_404(user_id: str) -> User:
    user = user_admin.get_user(user_id)
    if user is None:
        abort(404)
    return user


def users_list():
    q = (request.args.get("q") or "").strip()
    page = user_admin.search_users(q, page_number(request.args.get("page")))
    factors = mfa.factors_by_user([user.id for user in page.items])
    return render_template("admin/users.html", page=page, q=q, factors=factors)


def _json_text(value: Any) -> str:
    return json.dumps(value or {}, indent=2, sort_keys=True, ensure_ascii=False)


def user_edit(user_id: str):
    user = _user_or_404(user_id)
    form = UserEditForm(obj=user if request.method == "GET" else None)
    if request.method == "GET":
        form.app_metadata.data = _json_text(user.app_metadata)
        form.user_metadata.data = _json_text(user.user_metadata)
    if form.validate_on_submit():
        parsed = {}
        for field, label in (
            (form.app_metadata, "app_metadata"),
            (form.user_metadata, "user_metadata"),
        ):
            try:
                parsed[label] = user_admin.parse_metadata(field.data, label)
            except user_admin.UserAdminError as error:
                field.errors.append(str(error))
        if len(parsed) == 2:
            try:
                changed = user_admin.update_user(
                    user, actor_id=actor(), name=form.name.data, phone=form.phone.data, **parsed
                )
            except user_admin.UserAdminError as error:
                flash(str(error), "error")
            else:
                flash("Saved." if changed else "Nothing changed.", "success" if changed else "info")
                return redirect(url_for("admin.user_edit", user_id=user.id))
    status = 400 if request.method == "POST" else 200
    return render_template(
        "admin/user_edit.html",
        user=user,
        form=form,
        summary=user_admin.user_summary(user),
        grants=consents.list_user_grants(user),
        factors=mfa.factors(user),
        recovery_codes_left=mfa.recovery_codes_left(user),
    ), status


def _user_action(user_id: str, action) -> Any:
    confirmed()
    user = _user_or_404(user_id)
    try:
        message = action(user)
    except user_admin.UserAdminError as error:
        flash(str(error), "error")
    else:
        flash(message, "success")
    return redirect(url_for("admin.user_edit", user_id=user.id))


def user_set_admin(user_id: str):
    make_admin = request.form.get("is_admin") == "1"

    def action(user: User) -> str:
        user_admin.set_admin(user, make_admin, actor_id=actor())
        return f"{user.email} is {'now' if make_admin else 'no longer'} an administrator."

    return _user_action(user_id, action)


def user_disable(user_id: str):
    def action(user: User) -> str:
        revoked = user_admin.disable_user(user, actor_id=actor())
        return f"{user.email} is disabled and signed out; {revoked} OAuth session(s) revoked."

    return _user_action(user_id, action)


def user_enable(user_id: str):
    def action(user: User) -> str:
        user_admin.enable_user(user, actor_id=actor())
        return f"{user.email} can sign in again."

    return _user_action(user_id, action)


def user_verify_email(user_id: str):
    def action(user: User) -> str:
        email_verification.mark_verified(user, actor_id=actor())
        return f"{user.email} is marked verified."

    return _user_action(user_id, action)


def user_delete(user_id: str):
    """GET: what deleting the account means; POST (CSRF): delete it, through the one service
    and its ``before_user_deleted`` hook."""
    user = _user_or_404(user_id)
    if request.method == "POST":
        confirmed()
        try:
            deletion.delete_account(user, via="admin", actor_id=actor())
        except AccountError as error:
            flash(str(error), "error")
            return redirect(url_for("admin.user_edit", user_id=user.id))
        flash(f"The account {user.email} was deleted.", "success")
        return redirect(url_for("admin.users_list"))
    return render_template(
        "admin/confirm_delete.html",
        title=f"Delete the account {user.email}?",
        what=user.email,
        consequences=[
            "The user is signed out everywhere and can no longer sign in.",
            "Their authorized apps, refresh tokens and second factors are deleted.",
            "The audit log keeps their events under a pseudonym, without personal data.",
        ],
        action=url_for("admin.user_delete", user_id=user.id),
        back=url_for("admin.user_edit", user_id=user.id),
        button="Delete account",
    )


def user_reset_mfa(user_id: str):
    """GET: what a reset does, with the confirm button; POST (CSRF): remove every factor."""
    user = _user_or_404(user_id)
    if request.method == "POST":
        confirmed()
        removed = mfa.reset(user, actor_id=actor(), via="admin")
        what = ", ".join(removed) or "no factor"
        flash(f"Second factors of {user.email} removed ({what}).", "success")
        return redirect(url_for("admin.user_edit", user_id=user.id))
    return render_template(
        "admin/confirm_delete.html",
        title=f"Reset the second factors of {user.email}?",
        what=user.email,
        consequences=[
            "Their authenticator app and recovery codes stop working at once.",
            "They sign in with their password only, until they set up a factor again.",
            "Do this only once you are sure who asks (a lost phone).",
        ],
        action=url_for("admin.user_reset_mfa", user_id=user.id),
        back=url_for("admin.user_edit", user_id=user.id),
        button="Reset second factors",
    )
