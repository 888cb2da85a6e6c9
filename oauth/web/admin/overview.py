"""The admin overview: counts, the signing key, recent events."""

from __future__ import annotations

import datetime as dt

from flask import current_app, render_template

from oauth import audit
from oauth.accounts import consents
from oauth.storage.models import Api, AuditEvent, Client, OAuthSession, SigningKey, User, utcnow
from oauth.tokens import keys
from oauth.web.admin.plugins import loaded_plugins


def index():
    since = utcnow() - dt.timedelta(days=1)
    current_key = SigningKey.get_or_none(  # the access-token key (there is one per alg)
        (SigningKey.state == keys.CURRENT) & (SigningKey.alg == current_app.config["SIGNING_ALG"])
    )
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
    plugins = loaded_plugins()
    recent = list(
        AuditEvent.select().order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(8)
    )
    emails, names = audit.labels(recent)
    return render_template(
        "admin/index.html",
        counts=counts,
        current_key=current_key,
        plugin_count=len(plugins or []),
        recent=recent,
        emails=emails,
        names=names,
    )
