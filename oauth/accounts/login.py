"""flask-login wiring. A session id is ``<user id>.<session epoch>``: bumping the epoch
(password change, "sign out everywhere") ends every other browser session of the user."""

from __future__ import annotations

import time

from flask import Flask, session
from flask_login import LoginManager, current_user, login_user, logout_user

from oauth import audit
from oauth.storage.db import write_transaction
from oauth.storage.models import User

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."
login_manager.login_message_category = "info"
login_manager.session_protection = "basic"


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    user_id, _, epoch = session_id.rpartition(".")
    user = User.get_or_none(User.id == user_id)
    if user is None or user.disabled or str(user.session_epoch) != epoch:
        return None
    return user


def sign_in(user: User, method: str = "pwd") -> None:
    """Start a browser session, remembering when and how the user authenticated (OIDC auth_time/amr)."""
    session.clear()
    login_user(user)
    session["login_at"] = time.time()
    session["auth_time"] = int(session["login_at"])
    session["amr"] = [method]


def sign_out() -> None:
    """End this browser's session (audited when someone was signed in)."""
    if current_user.is_authenticated:
        with write_transaction():
            audit.record("logout", user_id=current_user.id)
    logout_user()
    session.clear()


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
