"""flask-wtf forms. Field names are a contract (DESIGN.md): scripts and tests drive them."""

from __future__ import annotations

from flask import abort, request
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, Regexp, ValidationError

from oauth.accounts.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from oauth.accounts.users import email_problem, normalise_email

PASSWORD_RULES = (
    f"At least {MIN_PASSWORD_LENGTH} characters (at most {MAX_PASSWORD_LENGTH}). "
    "Any characters, spaces too: a few unrelated words make a strong password."
)
PASSWORD_LENGTH_MESSAGE = (
    f"Password must be at least {MIN_PASSWORD_LENGTH} characters "
    f"(and at most {MAX_PASSWORD_LENGTH})."
)


class Form(FlaskForm):
    """Every HTML form. Flask-WTF would take a JSON body as the form data (a JSON list, number
    or object in a field was a 500, and an empty object passed as an empty form): the forms
    here read only what a browser submits, and a JSON body is a 400 page."""

    class Meta(FlaskForm.Meta):
        def wrap_formdata(self, form, formdata):
            if request.is_json and request.method in ("POST", "PUT", "PATCH", "DELETE"):
                abort(400)
            return super().wrap_formdata(form, formdata)


class LoginForm(Form):
    email = StringField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField(
        "Password", validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)]
    )
    next = HiddenField()


class SignupForm(Form):
    """Every field is checked at once, so the page shows every problem together."""

    email = StringField("Email", validators=[DataRequired(), Length(max=320)])
    name = StringField("Name", validators=[Optional(), Length(max=200)])
    password = PasswordField(
        "Password",
        description=PASSWORD_RULES,
        validators=[
            DataRequired(),
            Length(
                min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH, message=PASSWORD_LENGTH_MESSAGE
            ),
        ],
    )
    password_confirm = PasswordField(
        "Confirm password",
        validators=[Optional(), EqualTo("password", message="Passwords do not match.")],
    )
    next = HiddenField()

    def validate_email(self, field) -> None:
        problem = email_problem(normalise_email(field.data))
        if problem:
            raise ValidationError(problem)


class ProfileForm(Form):
    name = StringField("Name", validators=[Optional(), Length(max=200)])
    phone = StringField("Phone", validators=[Optional(), Length(max=40)])
    picture = StringField(
        "Picture URL",
        validators=[
            Optional(),
            Length(max=2048),
            Regexp(r"(?i)^https://\S+$", message="The picture must be an https:// URL."),
        ],
    )


class PasswordChangeForm(Form):
    current_password = PasswordField("Current password", validators=[DataRequired()])
    new_password = PasswordField(
        "New password",
        validators=[
            DataRequired(),
            Length(
                min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH, message=PASSWORD_LENGTH_MESSAGE
            ),
        ],
    )
    new_password_confirm = PasswordField(
        "Confirm new password",
        validators=[DataRequired(), EqualTo("new_password", message="Passwords do not match.")],
    )


class DeleteAccountForm(Form):
    """Deleting one's own account: the current password, the second factor's ``code`` when
    the account has one, and an explicit confirmation."""

    password = PasswordField("Your password", validators=[DataRequired()])
    code = StringField(
        "Code from your authenticator app, or a recovery code",
        validators=[Optional(), Length(max=64)],
    )
    confirm = BooleanField(
        "I understand that my account and everything in it is deleted for good.",
        validators=[DataRequired(message="Tick the box to confirm.")],
    )


class ConfirmForm(Form):
    """A form with nothing but its CSRF token, for POST-only buttons (logout, revoke...)."""


class ConsentForm(Form):
    """The consent decision: a button named ``decision`` valued ``approve`` or ``deny``."""

    decision = HiddenField()


class SecondFactorForm(Form):
    """The second step of a sign-in (/login/mfa): ``code`` is a TOTP or a recovery code."""

    code = StringField("Code", validators=[DataRequired(), Length(max=64)])
    next = HiddenField()


class TotpConfirmForm(Form):
    """Enrolment: the first code of the new authenticator proves it was set up."""

    code = StringField(
        "Code from the app",
        validators=[DataRequired(), Length(max=16)],
        description="The 6-digit code your authenticator app shows now.",
    )
    next = HiddenField()


class TotpDisableForm(Form):
    """Removing the authenticator, or new recovery codes: the password or a code proves it."""

    password = PasswordField("Current password", validators=[Optional(), Length(max=1024)])
    code = StringField("Or a code", validators=[Optional(), Length(max=64)])


class ForgotPasswordForm(Form):
    email = StringField("Email", validators=[DataRequired(), Length(max=320)])


class ResetPasswordForm(Form):
    password = PasswordField(
        "New password",
        validators=[
            DataRequired(),
            Length(
                min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH, message=PASSWORD_LENGTH_MESSAGE
            ),
        ],
    )
    password_confirm = PasswordField(
        "Confirm new password",
        validators=[Optional(), EqualTo("password", message="Passwords do not match.")],
    )


class ResendVerificationForm(Form):
    """Signed-in users send nothing but the CSRF token; others give the address."""

    email = StringField("Email", validators=[Optional(), Length(max=320)])


class EmailChangeForm(Form):
    new_email = StringField("New email address", validators=[DataRequired(), Length(max=320)])
    current_password = PasswordField(
        "Current password", validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)]
    )
