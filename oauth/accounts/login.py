"""flask-login wiring over server-side browser sessions (``accounts/browser_sessions.py``):
flask-login's user id in the signed cookie is the session's random id, nothing else. Signing
in always starts a new session (a cookie planted before sign-in never becomes signed in);
signing out deletes the row, so a copy of the cookie stops working at once."""

from __future__ import annotations

import time

from flask import Flask, request, session
from flask_login import LoginManager, current_user, login_user, logout_user

from oauth import audit
from oauth.accounts import browser_sessions
from oauth.storage.db import write_transaction
from oauth.storage.models import User

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."
login_manager.login_message_category = "info"
login_manager.session_protection = "basic"


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    row = browser_sessions.find(session_id)
    if row is None:
        return None
    user = row.user
    user.browser_session_id = session_id
    user.browser_sid = row.sid
    return user


def current_session_id() -> str | None:
    """The random id of this browser's session (None when nobody is signed in)."""
    if not current_user.is_authenticated:
        return None
    return current_user.browser_session_id


def sign_in(user: User, method: str = "pwd") -> None:
    """Start a new browser session, remembering when and how the user authenticated (OIDC
    auth_time/amr: on the row, and in the signed cookie where the authorization code reads it)."""
    browser_sessions.end(session.get("_user_id"))  # whatever this browser had ends here
    session.clear()
    login_at = time.time()
    session_id = browser_sessions.start(
        user,
        auth_time=int(login_at),
        amr=[method],
        user_agent=request.user_agent.string,
        ip=request.remote_addr or "",
    )
    user.browser_session_id = session_id
    login_user(user)
    session["login_at"] = login_at
    session["auth_time"] = int(login_at)
    session["amr"] = [method]


def sign_out() -> None:
    """End this browser's session (audited when someone was signed in)."""
    user_id = current_user.id if current_user.is_authenticated else None  # before the row goes
    with write_transaction():
        browser_sessions.end(session.get("_user_id"), logout_reason="signed_out")
        if user_id is not None:
            audit.record("logout", user_id=user_id)
    logout_user()
    session.clear()


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
