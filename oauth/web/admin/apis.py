"""Admin pages for APIs (resource servers) and their client grants."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from oauth.registry import apis, client_grants, clients
from oauth.storage.models import Api, Client
from oauth.web.admin.common import client_or_404, confirmed
from oauth.web.admin_forms import ApiForm, ClientGrantForm, choice, lines


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


def api_detail(api_id: str):
    api = _api_or_404(api_id)
    return _render_api(api, _grant_form(api, _grantable_clients()), None)


def api_grant(api_id: str):
    api = _api_or_404(api_id)
    form = _grant_form(api, _grantable_clients())
    if not form.validate_on_submit():
        return _render_api(api, form, None, 400)
    client = client_or_404(form.client_id.data)
    try:
        client_grants.grant(client, api, form.scopes.data or [])
    except apis.ApiError as error:
        return _render_api(api, form, error.message, 400)
    flash(f"{client.name} may now get tokens for {api.name}.", "success")
    return redirect(url_for("admin.api_detail", api_id=api.id))


def api_revoke_grant(api_id: str, client_id: str):
    """GET: what revoking the grant means; POST (CSRF): revoke it."""
    api = _api_or_404(api_id)
    client = client_or_404(client_id)
    if request.method == "GET":
        if client_grants.get_grant(client, api) is None:
            abort(404)
        return render_template(
            "admin/confirm_delete.html",
            title=f"Revoke the grant of {client.name} for {api.name}?",
            what=f"{client.client_id} → {api.identifier}",
            consequences=[
                "The client can no longer get client_credentials tokens for this API.",
                "It can get tokens for it again only after a new grant.",
            ],
            action=url_for("admin.api_revoke_grant", api_id=api.id, client_id=client.client_id),
            back=url_for("admin.api_detail", api_id=api.id),
            button="Revoke grant",
        )
    confirmed()
    if not client_grants.revoke_grant(client, api):
        abort(404)
    flash(f"{client.name} can no longer get tokens for {api.name}.", "success")
    return redirect(url_for("admin.api_detail", api_id=api.id))


def api_delete(api_id: str):
    api = _api_or_404(api_id)
    if request.method == "POST":
        confirmed()
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
