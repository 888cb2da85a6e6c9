"""flask-wtf forms of the admin pages (every one carries ``csrf_token``)."""

from __future__ import annotations

from wtforms import (
    BooleanField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.validators import DataRequired, Length, Optional

from oauth.registry.clients import DEFAULT_GRANT_TYPES, GRANT_TYPES, MAX_NAME_LENGTH, MAX_URI_LENGTH
from oauth.tokens.jose import SUPPORTED_ALGS
from oauth.web.forms import Form

try:
    from wtforms import SelectChoice
except ImportError:  # WTForms < 3.3 takes (value, label) tuples

    def SelectChoice(value: str, label: str | None = None):
        return (value, value if label is None else label)


def choice(value: str, label: str | None = None):
    """One option of a select or checkbox list."""
    return SelectChoice(value, label)


GRANT_TYPE_LABELS = {
    "authorization_code": "Authorization code (users sign in)",
    "refresh_token": "Refresh token",
    "client_credentials": "Client credentials (machine to machine)",
}


class MultiCheckboxField(SelectMultipleField):
    """A list of checkboxes (one per choice) instead of a multi-select box."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


def lines(text: str | None) -> list[str]:
    """Non-empty stripped lines of a textarea."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class ClientForm(Form):
    name = StringField("Name", validators=[DataRequired(), Length(max=MAX_NAME_LENGTH)])
    redirect_uris = TextAreaField(
        "Redirect URIs", description="One per line.", render_kw={"rows": 3}
    )
    grant_types = MultiCheckboxField(
        "Grant types",
        choices=[choice(g, GRANT_TYPE_LABELS[g]) for g in GRANT_TYPES],
        default=list(DEFAULT_GRANT_TYPES),
    )
    client_uri = StringField(
        "Site (client_uri)", validators=[Optional(), Length(max=MAX_URI_LENGTH)]
    )
    logo_uri = StringField(
        "Logo URL (logo_uri)", validators=[Optional(), Length(max=MAX_URI_LENGTH)]
    )
    post_logout_redirect_uris = TextAreaField(
        "After sign-out, return to (post_logout_redirect_uris)",
        description="One per line.",
        render_kw={"rows": 2},
    )
    backchannel_logout_uri = StringField(
        "Back-channel logout URI", validators=[Optional(), Length(max=MAX_URI_LENGTH)]
    )
    backchannel_logout_session_required = BooleanField("Logout tokens must carry sid")
    logout_revokes_tokens = BooleanField("Signing out through this app revokes its tokens")
    require_mfa = BooleanField(
        "Require a second factor (every sign-in for this client: authenticator app or passkey)",
        default=False,
    )
    id_token_alg = SelectField(
        "ID token signature (id_token_signed_response_alg)",
        choices=[choice("", "Default (RS256)")] + [choice(alg) for alg in SUPPORTED_ALGS],
        default="",
    )
    pkce_optional = BooleanField(
        "Do not require PKCE (confidential clients only: then every OpenID request must "
        "carry a nonce; for clients that cannot send PKCE, such as the conformance suite)",
        default=False,
    )


class ClientCreateForm(ClientForm):
    public = BooleanField(
        "Public client (single-page or native app: no secret, PKCE only)", default=False
    )


class ClientEditForm(ClientForm):
    metadata = TextAreaField(
        "Metadata (JSON object)",
        description="Free-form; plugins see it as client.metadata.",
        render_kw={"rows": 4, "spellcheck": "false", "class": "mono"},
    )


class UserEditForm(Form):
    name = StringField("Name", validators=[Optional(), Length(max=200)])
    phone = StringField("Phone", validators=[Optional(), Length(max=40)])
    app_metadata = TextAreaField(
        "app_metadata (JSON object)",
        description="Set by administrators; users cannot change it. In every access token.",
        render_kw={"rows": 5, "spellcheck": "false"},
    )
    user_metadata = TextAreaField(
        "user_metadata (JSON object)",
        description="The user's own data. In every access token.",
        render_kw={"rows": 5, "spellcheck": "false"},
    )


GRACE_CHOICES = (
    (0, "None: the old secret stops working at once"),
    (600, "10 minutes"),
    (3600, "1 hour"),
    (86400, "1 day"),
    (7 * 86400, "7 days"),
    (30 * 86400, "30 days (the longest)"),
)


class RotateSecretForm(Form):
    grace_seconds = SelectField(
        "Grace period for the old secret",
        choices=[choice(str(value), label) for value, label in GRACE_CHOICES],
        default="0",
        validate_choice=True,
        description="Until it ends both secrets work: time to deploy the new one everywhere.",
    )


class KeyForm(Form):
    alg = SelectField(
        "Algorithm",
        choices=[choice("", "Default")] + [choice(alg) for alg in SUPPORTED_ALGS],
        default="",
        validate_choice=True,
    )


class ApiForm(Form):
    identifier = StringField(
        "Identifier (audience)",
        validators=[DataRequired(), Length(max=2048)],
        description="A URL or URN, e.g. https://api.example.com; it cannot be changed later.",
    )
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    scopes = TextAreaField(
        "Scopes",
        description="One per line: value or value=description, e.g. read:orders=Read orders.",
        render_kw={"rows": 4, "spellcheck": "false"},
    )


class ClientGrantForm(Form):
    client_id = SelectField("Client", validators=[DataRequired()], validate_choice=True)
    scopes = MultiCheckboxField("Scopes", validate_choice=True)
