"""Admin pages for clients: list, create, edit, rotate the secret, delete."""

from __future__ import annotations

import json

from flask import abort, flash, redirect, render_template, request, url_for

from oauth.accounts import admin as user_admin
from oauth.registry import client_secrets, clients, logout_settings
from oauth.storage.models import Client
from oauth.web.admin.common import actor, client_or_404, confirmed
from oauth.web.admin_forms import ClientCreateForm, ClientEditForm, RotateSecretForm, lines


def clients_list():
    return render_template("admin/clients.html", clients=clients.list_clients())


def _secret_page(client: Client, secret: str | None, *, created: bool):
    return render_template(
        "admin/client_secret.html",
        client=client,
        secret=secret,
        created=created,
        previous_expires=client_secrets.previous_secret_expires_at(client),
    )


def _with_logout_fields(form, metadata: dict) -> dict:
    """``metadata`` with the form's logout settings (they win over the JSON textarea)."""
    metadata = {k: v for k, v in metadata.items() if k not in logout_settings.FIELDS}
    metadata[logout_settings.POST_LOGOUT_REDIRECT_URIS] = lines(form.post_logout_redirect_uris.data)
    metadata[logout_settings.BACKCHANNEL_LOGOUT_URI] = (
        form.backchannel_logout_uri.data or ""
    ).strip()
    for flag in (logout_settings.SESSION_REQUIRED, logout_settings.REVOKES_TOKENS):
        if getattr(form, flag).data:
            metadata[flag] = True
    return metadata


def _show_logout_fields(form, client: Client) -> None:
    form.post_logout_redirect_uris.data = "\n".join(
        logout_settings.post_logout_redirect_uris(client)
    )
    form.backchannel_logout_uri.data = logout_settings.backchannel_logout_uri(client) or ""
    form.backchannel_logout_session_required.data = logout_settings.session_required(client)
    form.logout_revokes_tokens.data = logout_settings.revokes_tokens(client)


def _oidc_metadata(form, metadata: dict) -> dict:
    """The form's ID token algorithm and PKCE choice, as the client metadata keeps them."""
    metadata = dict(metadata)
    metadata.pop("id_token_signed_response_alg", None)
    metadata.pop("require_pkce", None)
    if form.id_token_alg.data:
        metadata["id_token_signed_response_alg"] = form.id_token_alg.data
    if form.pkce_optional.data:
        metadata["require_pkce"] = False
    return metadata


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
                metadata=_oidc_metadata(form, _with_logout_fields(form, {})),
                require_mfa=form.require_mfa.data,
                actor_id=actor(),
            )
        except clients.ClientError as error:
            problem = error.message
        else:
            return _secret_page(client, secret, created=True), 201
    status = 400 if request.method == "POST" else 200
    return render_template("admin/client_new.html", form=form, problem=problem), status


def client_edit(client_id: str):
    client = client_or_404(client_id)
    form = ClientEditForm(obj=client if request.method == "GET" else None)
    if request.method == "GET":
        form.redirect_uris.data = "\n".join(client.redirect_uris)
        form.grant_types.data = list(client.grant_types)
        others = {
            k: v for k, v in (client.metadata or {}).items() if k not in logout_settings.FIELDS
        }
        form.metadata.data = json.dumps(others, indent=2, sort_keys=True)
        _show_logout_fields(form, client)
        form.id_token_alg.data = (client.metadata or {}).get("id_token_signed_response_alg", "")
        form.pkce_optional.data = clients.pkce_optional(client)
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
                    actor_id=actor(),
                    name=form.name.data,
                    redirect_uris=lines(form.redirect_uris.data),
                    grant_types=form.grant_types.data,
                    client_uri=(form.client_uri.data or "").strip(),
                    logo_uri=(form.logo_uri.data or "").strip(),
                    metadata=_oidc_metadata(form, _with_logout_fields(form, metadata)),
                    require_mfa=form.require_mfa.data,
                )
            except clients.ClientError as error:
                problem = error.message
            else:
                flash(f"Client {client.name} saved.", "success")
                return redirect(url_for("admin.client_edit", client_id=client.client_id))
    status = 400 if request.method == "POST" else 200
    return render_template(
        "admin/client_edit.html",
        client=client,
        form=form,
        problem=problem,
        previous_expires=client_secrets.previous_secret_expires_at(client),
    ), status


def client_rotate_secret(client_id: str):
    """GET: the grace period to choose, and what rotating means; POST (CSRF): rotate."""
    client = client_or_404(client_id)
    form = RotateSecretForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        try:
            secret = clients.rotate_secret(
                client, actor_id=actor(), grace_seconds=int(form.grace_seconds.data)
            )
        except clients.ClientError as error:
            flash(error.message, "error")
            return redirect(url_for("admin.client_edit", client_id=client.client_id))
        return _secret_page(client, secret, created=False)
    if client.is_public:
        flash("public clients have no secret", "error")
        return redirect(url_for("admin.client_edit", client_id=client.client_id))
    return render_template(
        "admin/confirm_delete.html",
        title=f"Rotate the secret of {client.name}?",
        what=client.client_id,
        consequences=[
            "A new secret is shown once; only its hash is kept.",
            "The old secret works until the grace period you choose ends, then never again.",
        ]
        + (
            ["The secret still in an earlier grace period stops working now."]
            if client_secrets.previous_secret_expires_at(client)
            else []
        ),
        form=form,
        action=url_for("admin.client_rotate_secret", client_id=client.client_id),
        back=url_for("admin.client_edit", client_id=client.client_id),
        button="Rotate secret",
    )


def client_delete(client_id: str):
    client = client_or_404(client_id)
    if request.method == "POST":
        confirmed()
        clients.delete_client(client, actor_id=actor())
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
