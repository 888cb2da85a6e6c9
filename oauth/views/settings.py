"""The signed-in user's own pages."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from .. import accounts, passwords
from ..forms import PasswordChangeForm, ProfileForm
from ..login import sign_in
from ..models import User

bp = Blueprint("settings", __name__, url_prefix="/settings")


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile():
    user: User = current_user._get_current_object()
    form = ProfileForm(obj=user)
    password_form = PasswordChangeForm()
    if form.validate_on_submit():
        user.name = (form.name.data or "").strip()
        user.phone = (form.phone.data or "").strip()
        user.picture = (form.picture.data or "").strip()
        user.save()
        flash("Profile saved.", "success")
        return redirect(url_for("settings.profile"))
    return render_template("profile.html", form=form, password_form=password_form)


@bp.route("/password", methods=["POST"])
@login_required
def change_password():
    user: User = current_user._get_current_object()
    form = ProfileForm(obj=user, formdata=None)
    password_form = PasswordChangeForm()
    if password_form.validate_on_submit():
        if not passwords.verify_password(user.password_hash, password_form.current_password.data):
            password_form.current_password.errors.append("Current password is incorrect.")
        else:
            try:
                accounts.set_password(user, password_form.new_password.data)
            except accounts.AccountError as error:
                password_form.new_password.errors.append(str(error))
            else:
                sign_in(user)  # the epoch moved: keep this browser, end every other session
                flash("Password changed. Other sessions were signed out.", "success")
                return redirect(url_for("settings.profile"))
    return render_template("profile.html", form=form, password_form=password_form), 400
