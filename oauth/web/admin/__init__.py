"""Admin pages: clients, users, signing keys, plugins, APIs and the audit log (admins only).

Views stay thin: the services (registry, keys, accounts) validate, write in one transaction
and record the audit event themselves; the views pass the admin as ``actor_id``. The one
blueprint's URL map is below, each view in the module of its area.
"""

from __future__ import annotations

from flask import Blueprint, abort
from flask_login import current_user

from oauth.accounts.login import login_manager
from oauth.web.admin import apis, audit_log, clients, keys, overview, plugins, users

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


ROUTES = [
    ("/", overview.index),
    ("/clients", clients.clients_list),
    ("/clients/new", clients.client_new, ["GET", "POST"]),
    # <path:...>: a metadata document client's id is a URL, slashes included
    ("/clients/<path:client_id>", clients.client_edit, ["GET", "POST"]),
    ("/clients/<path:client_id>/rotate-secret", clients.client_rotate_secret, ["GET", "POST"]),
    ("/clients/<path:client_id>/delete", clients.client_delete, ["GET", "POST"]),
    ("/users", users.users_list),
    ("/users/<user_id>", users.user_edit, ["GET", "POST"]),
    ("/users/<user_id>/admin", users.user_set_admin, ["POST"]),
    ("/users/<user_id>/disable", users.user_disable, ["POST"]),
    ("/users/<user_id>/enable", users.user_enable, ["POST"]),
    ("/users/<user_id>/reset-mfa", users.user_reset_mfa, ["GET", "POST"]),
    ("/users/<user_id>/verify-email", users.user_verify_email, ["POST"]),
    ("/users/<user_id>/delete", users.user_delete, ["GET", "POST"]),
    ("/keys", keys.keys_list),
    ("/keys/add", keys.keys_add, ["POST"]),
    ("/keys/rotate", keys.keys_rotate, ["POST"]),
    ("/keys/<kid>/revoke", keys.keys_revoke, ["GET", "POST"]),
    ("/plugins", plugins.plugins_list),
    ("/apis", apis.apis_list, ["GET", "POST"]),
    ("/apis/<api_id>", apis.api_detail, ["GET"]),
    ("/apis/<api_id>/grants", apis.api_grant, ["POST"]),
    ("/apis/<api_id>/grants/<client_id>/revoke", apis.api_revoke_grant, ["GET", "POST"]),
    ("/apis/<api_id>/delete", apis.api_delete, ["GET", "POST"]),
    ("/audit", audit_log.audit_list),
]

for path, view, *methods in ROUTES:
    bp.add_url_rule(path, view_func=view, methods=methods[0] if methods else ["GET"])
