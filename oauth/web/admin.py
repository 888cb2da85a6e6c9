"""Admin pages: clients, users, signing keys, plugins, APIs and the audit log (admins only).

Views stay thin: the services (clients, keys, apis, user_admin) validate, write in one
transaction and record the audit event themselves; the views pass the admin as ``actor_id``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

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

from oauth import audit_log
from oauth.accounts import admin as user_admin
from oauth.accounts import consents
from oauth.accounts.login import login_manager
from oauth.pagination import page_number
from oauth.registry import apis, client_grants, clients
from oauth.storage.models import (
    Api,
    AuditEvent,
    Client,
    OAuthSession,
    SigningKey,
    User,
    utcnow,
)
from oauth.tokens import keys
from oauth.web.admin_forms import (
    ApiForm,
    ClientCreateForm,
    ClientEditForm,
    ClientGrantForm,
    KeyForm,
    UserEditForm,
    choice,
    lines,
)
from oauth.web.forms import ConfirmForm

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def _admins_only():
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_admin:
        abort(403)
    return None


@bp.after_request
def _no_store(response):
    # Admin pages show secrets once and personal data: never cache them.
    response.headers["Cache-Control"] = "no-store"
    return response


def _actor() -> str:
    return current_user.id


def _confirmed() -> None:
    """Abort with 400 unless the POST carries a valid CSRF token."""
    if not ConfirmForm().validate_on_submit():
        abort(400)


# --- overview ----------------------------------------------------------------------------


@bp.route("/")
def index():
    since = utcnow() - dt.timedelta(days=1)
    current_key = SigningKey.get_or_none(SigningKey.state == keys.CURRENT)
    counts = {
        "users": User.select().count(),
        "admins": User.select().where(User.is_admin).count(),
        "disabled": User.select().where(User.disabled).count(),
        "clients": Client.select().count(),
        "dynamic_clients": Client.select().where(Client.registration_type == "dynamic").count(),
        "grants": consents.count(),
        "sessions": OAuthSession.select().where(OAuthSession.revoked_at.is_null()).count(),
        "apis": Api.select().count(),
        "keys": SigningKey.select().where(SigningKey.state != keys.REVOKED).count(),
        "events_24h": AuditEvent.select().where(AuditEvent.created_at >= since).count(),
        "failed_logins_24h": AuditEvent.select()
        .where((AuditEvent.created_at >= since) & (AuditEvent.event_type == "login.failed"))
        .count(),
    }
    plugins = _plugins()
    recent = list(
        AuditEvent.select().order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(8)
    )
    emails, names = audit_log.labels(recent)
    return render_template(
        "admin/index.html",
        counts=counts,
        current_key=current_key,
        plugin_count=len(plugins or []),
        recent=recent,
        emails=emails,
        names=names,
    )


# --- clients -----------------------------------------------------------------------------


def _client_or_404(client_id: str) -> Client:
    client = clients.get_client(client_id)
    if client is None:
        abort(404)
    return client


@bp.route("/clients")
def clients_list():
    return render_template("admin/clients.html", clients=clients.list_clients())


def _secret_page(client: Client, secret: str | None, *, created: bool):
    return render_template(
        "admin/client_secret.html", client=client, secret=secret, created=created
    )


@bp.route("/clients/new", methods=["GET", "POST"])
def client_new():
    form = ClientCreateForm()
    problem = None
    if form.validate_on_submit():
        try:
            client, secret = clients.create_client(
                form.name.data,
                lines(form.redirect_uris.data),
                public=form.public.data,
                grant_types=form.grant_types.data,
                client_uri=(form.client_uri.data or "").strip(),
                logo_uri=(form.logo_uri.data or "").strip(),
                actor_id=_actor(),
            )
        except clients.ClientError as error:
            problem = error.message
        else:
            return _secret_page(client, secret, created=True), 201
    status = 400 if request.method == "POST" else 200
    return render_template("admin/client_new.html", form=form, problem=problem), status


@bp.route("/clients/<client_id>", methods=["GET", "POST"])
def client_edit(client_id: str):
    client = _client_or_404(client_id)
    form = ClientEditForm(obj=client if request.method == "GET" else None)
    if request.method == "GET":
        form.redirect_uris.data = "\n".join(client.redirect_uris)
        form.grant_types.data = list(client.grant_types)
        form.metadata.data = json.dumps(client.metadata or {}, indent=2, sort_keys=True)
    problem = None
    if form.validate_on_submit():
        try:
            metadata = user_admin.parse_metadata(form.metadata.data, "Metadata")
        except user_admin.UserAdminError as error:
            form.metadata.errors.append(str(error))
        else:
            try:
                clients.update_client(
                    client,
                    actor_id=_actor(),
                    name=form.name.data,
                    redirect_uris=lines(form.redirect_uris.data),
                    grant_types=form.grant_types.data,
                    client_uri=(form.client_uri.data or "").strip(),
                    logo_uri=(form.logo_uri.data or "").strip(),
                    metadata=metadata,
                )
            except clients.ClientError as error:
                problem = error.message
            else:
                flash(f"Client {client.name} saved.", "success")
                return redirect(url_for("admin.client_edit", client_id=client.client_id))
    status = 400 if request.method == "POST" else 200
    return render_template(
        "admin/client_edit.html", client=client, form=form, problem=problem
    ), status


@bp.route("/clients/<client_id>/rotate-secret", methods=["POST"])
def client_rotate_secret(client_id: str):
    _confirmed()
    client = _client_or_404(client_id)
    try:
        secret = clients.rotate_secret(client, actor_id=_actor())
    except clients.ClientError as error:
        flash(error.message, "error")
        return redirect(url_for("admin.client_edit", client_id=client.client_id))
    return _secret_page(client, secret, created=False)


@bp.route("/clients/<client_id>/delete", methods=["GET", "POST"])
def client_delete(client_id: str):
    client = _client_or_404(client_id)
    if request.method == "POST":
        _confirmed()
        clients.delete_client(client, actor_id=_actor())
        flash(f"Client {client.name} deleted.", "success")
        return redirect(url_for("admin.clients_list"))
    return render_template(
        "admin/confirm_delete.html",
        title=f"Delete client {client.name}?",
        what=client.name,
        consequences=[
            "Its client ID and secret stop working at once.",
            "Every user's authorization of it, and every token it holds, is deleted.",
        ],
        action=url_for("admin.client_delete", client_id=client.client_id),
        back=url_for("admin.client_edit", client_id=client.client_id),
        button="Delete client",
    )


# --- users -------------------------------------------------------------------------------


def _user_or_404(user_id: str) -> User:
    user = user_admin.get_user(user_id)
    if user is None:
        abort(404)
    return user


@bp.route("/users")
def users_list():
    q = (request.args.get("q") or "").strip()
    page = user_admin.search_users(q, page_number(request.args.get("page")))
    return render_template("admin/users.html", page=page, q=q)


def _json_text(value: Any) -> str:
    return json.dumps(value or {}, indent=2, sort_keys=True, ensure_ascii=False)


@bp.route("/users/<user_id>", methods=["GET", "POST"])
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
            changed = user_admin.update_user(
                user,
                actor_id=_actor(),
                name=(form.name.data or "").strip(),
                phone=(form.phone.data or "").strip(),
                **parsed,
            )
            flash("Saved." if changed else "Nothing changed.", "success" if changed else "info")
            return redirect(url_for("admin.user_edit", user_id=user.id))
    status = 400 if request.method == "POST" else 200
    return render_template(
        "admin/user_edit.html",
        user=user,
        form=form,
        summary=user_admin.user_summary(user),
        grants=consents.list_user_grants(user),
    ), status


def _user_action(user_id: str, action) -> Any:
    _confirmed()
    user = _user_or_404(user_id)
    try:
        message = action(user)
    except user_admin.UserAdminError as error:
        flash(str(error), "error")
    else:
        flash(message, "success")
    return redirect(url_for("admin.user_edit", user_id=user.id))


@bp.route("/users/<user_id>/admin", methods=["POST"])
def user_set_admin(user_id: str):
    make_admin = request.form.get("is_admin") == "1"

    def action(user: User) -> str:
        user_admin.set_admin(user, make_admin, actor_id=_actor())
        return f"{user.email} is {'now' if make_admin else 'no longer'} an administrator."

    return _user_action(user_id, action)


@bp.route("/users/<user_id>/disable", methods=["POST"])
def user_disable(user_id: str):
    def action(user: User) -> str:
        revoked = user_admin.disable_user(user, actor_id=_actor())
        return f"{user.email} is disabled and signed out; {revoked} OAuth session(s) revoked."

    return _user_action(user_id, action)


@bp.route("/users/<user_id>/enable", methods=["POST"])
def user_enable(user_id: str):
    def action(user: User) -> str:
        user_admin.enable_user(user, actor_id=_actor())
        return f"{user.email} can sign in again."

    return _user_action(user_id, action)


# --- signing keys ------------------------------------------------------------------------


@bp.route("/keys")
def keys_list():
    return render_template(
        "admin/keys.html",
        keys=list(reversed(keys.list_keys())),
        add_form=KeyForm(prefix="add"),
        rotate_form=KeyForm(prefix="rotate"),
        default_alg=current_app.config.get("SIGNING_ALG", "ES256"),
    )


def _key_action(prefix: str, operation) -> Any:
    form = KeyForm(prefix=prefix)
    if not form.validate_on_submit():
        abort(400)
    try:
        key = operation(form.alg.data or None)
    except keys.KeyServiceError as error:
        flash(str(error), "error")
    else:
        return key
    return None


@bp.route("/keys/add", methods=["POST"])
def keys_add():
    key = _key_action("add", lambda alg: keys.add_key(alg, actor_id=_actor()))
    if key is not None:
        flash(
            f"Standby key {key.kid} ({key.alg}) added: published now, signing after a rotation.",
            "success",
        )
    return redirect(url_for("admin.keys_list"))


@bp.route("/keys/rotate", methods=["POST"])
def keys_rotate():
    key = _key_action("rotate", lambda alg: keys.rotate(alg, actor_id=_actor()))
    if key is not None:
        flash(
            f"Key {key.kid} ({key.alg}) is now the signing key; the old one stays published.",
            "success",
        )
    return redirect(url_for("admin.keys_list"))


@bp.route("/keys/<kid>/revoke", methods=["POST"])
def keys_revoke(kid: str):
    _confirmed()
    try:
        key = keys.revoke(kid[:64], actor_id=_actor())
    except keys.KeyServiceError as error:
        flash(str(error), "error")
    else:
        flash(f"Key {key.kid} revoked: tokens it signed no longer verify.", "success")
    return redirect(url_for("admin.keys_list"))


# --- plugins -----------------------------------------------------------------------------


def _plugins() -> list[dict] | None:
    host = current_app.extensions.get("portcullis.plugins")
    if host is None or not hasattr(host, "describe"):
        return None
    return list(host.describe())


@bp.route("/plugins")
def plugins_list():
    return render_template("admin/plugins.html", plugins=_plugins() or [])


# --- APIs --------------------------------------------------------------------------------


def _api_or_404(api_id: str) -> Api:
    api = apis.get_api_by_id(api_id)
    if api is None:
        abort(404)
    return api


def _grantable_clients() -> list[Client]:
    """Clients that may use client_credentials (confidential, with that grant type)."""
    return [
        c
        for c in clients.list_clients()
        if not c.is_public and "client_credentials" in (c.grant_types or [])
    ]


@bp.route("/apis", methods=["GET", "POST"])
def apis_list():
    form = ApiForm()
    problem = None
    if form.validate_on_submit():
        try:
            api = apis.create_api(
                form.identifier.data.strip(), form.name.data, lines(form.scopes.data)
            )
        except apis.ApiError as error:
            problem = error.message
        else:
            flash(f"API {api.name} created.", "success")
            return redirect(url_for("admin.api_detail", api_id=api.id))
    grants: dict[int, list] = {}
    for row in client_grants.list_grants():
        grants.setdefault(row.api_id, []).append(row)
    status = 400 if request.method == "POST" else 200
    return render_template(
        "admin/apis.html", apis=apis.list_apis(), form=form, grants=grants, problem=problem
    ), status


def _grant_form(api: Api, grantable: list[Client]) -> ClientGrantForm:
    form = ClientGrantForm()
    form.client_id.choices = [choice("", "Choose a client…")] + [
        choice(c.client_id, f"{c.name} ({c.client_id})") for c in grantable
    ]
    form.scopes.choices = [
        choice(s["value"], s["value"] + (f" — {s['description']}" if s.get("description") else ""))
        for s in api.scopes or []
    ]
    return form


def _render_api(api: Api, form: ClientGrantForm, problem: str | None, status: int = 200):
    return render_template(
        "admin/api_detail.html",
        api=api,
        grants=client_grants.list_grants(api=api),
        form=form,
        problem=problem,
        grantable=bool(form.client_id.choices[1:]),
    ), status


@bp.route("/apis/<api_id>", methods=["GET"])
def api_detail(api_id: str):
    api = _api_or_404(api_id)
    return _render_api(api, _grant_form(api, _grantable_clients()), None)


@bp.route("/apis/<api_id>/grants", methods=["POST"])
def api_grant(api_id: str):
    api = _api_or_404(api_id)
    form = _grant_form(api, _grantable_clients())
    if not form.validate_on_submit():
        return _render_api(api, form, None, 400)
    client = _client_or_404(form.client_id.data)
    try:
        client_grants.grant(client, api, form.scopes.data or [])
    except apis.ApiError as error:
        return _render_api(api, form, error.message, 400)
    flash(f"{client.name} may now get tokens for {api.name}.", "success")
    return redirect(url_for("admin.api_detail", api_id=api.id))


@bp.route("/apis/<api_id>/grants/<client_id>/revoke", methods=["POST"])
def api_revoke_grant(api_id: str, client_id: str):
    _confirmed()
    api = _api_or_404(api_id)
    client = _client_or_404(client_id)
    if not client_grants.revoke_grant(client, api):
        abort(404)
    flash(f"{client.name} can no longer get tokens for {api.name}.", "success")
    return redirect(url_for("admin.api_detail", api_id=api.id))


@bp.route("/apis/<api_id>/delete", methods=["GET", "POST"])
def api_delete(api_id: str):
    api = _api_or_404(api_id)
    if request.method == "POST":
        _confirmed()
        apis.delete_api(api)
        flash(f"API {api.name} deleted.", "success")
        return redirect(url_for("admin.apis_list"))
    return render_template(
        "admin/confirm_delete.html",
        title=f"Delete API {api.name}?",
        what=api.identifier,
        consequences=[
            "Clients can no longer get client_credentials tokens for it.",
            "Every client grant for it is revoked.",
        ],
        action=url_for("admin.api_delete", api_id=api.id),
        back=url_for("admin.api_detail", api_id=api.id),
        button="Delete API",
    )


# --- audit log ---------------------------------------------------------------------------


@bp.route("/audit")
def audit_list():
    filters = audit_log.filters_from(request.args)
    page = audit_log.search(filters, page_number(request.args.get("page")))
    emails, names = audit_log.labels(page.items)
    return render_template(
        "admin/audit.html",
        page=page,
        filters=filters,
        event_types=audit_log.event_types(),
        emails=emails,
        names=names,
        query={k: v for k, v in dataclasses.asdict(filters).items() if v},
    )
