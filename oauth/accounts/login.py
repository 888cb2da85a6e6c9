"""flask-login wiring over server-side browser sessions (``accounts/browser_sessions.py``):
flask-login's user id in the signed cookie is the session's random id, nothing else. Signing
in always starts a new session (a cookie planted before sign-in never becomes signed in);
signing out deletes the row, so a copy of the cookie stops working at once."""

from __future__ import annotations

import time

from flask import Flask, current_app, request, session
from flask_login import LoginManager, current_user, login_user, logout_user

from oauth import audit
from oauth.accounts import browser_sessions
from oauth.storage.db import write_transaction
from oauth.storage.models import User
from oauth.tokens.claims import assurance_level

# The password is right and a second factor is due: who, since when, how (the signed cookie).
SECOND_STEP_KEY = "second_step"

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
    return user


def current_session_id() -> str | None:
    """The random id of this browser's session (None when nobody is signed in)."""
    if not current_user.is_authenticated:
        return None
    return current_user.browser_session_id


def sign_in(user: User, method: str = "pwd", *, amr: list[str] | None = None) -> None:
    """Start a new browser session, remembering when and how the user authenticated (OIDC
    auth_time/amr: on the row, and in the signed cookie where the authorization code reads it).
    ``amr`` lists every method of a sign-in with several steps (["pwd", "totp"])."""
    methods = list(amr or [method])
    browser_sessions.end(session.get("_user_id"))  # whatever this browser had ends here
    session.clear()
    login_at = time.time()
    session_id = browser_sessions.start(
        user,
        auth_time=int(login_at),
        amr=methods,
        user_agent=request.user_agent.string,
        ip=request.remote_addr or "",
    )
    user.browser_session_id = session_id
    login_user(user)
    session["login_at"] = login_at
    session["auth_time"] = int(login_at)
    session["amr"] = methods


def current_amr() -> list[str]:
    """How this browser's user signed in (empty when nobody is)."""
    return list(session.get("amr") or []) if current_user.is_authenticated else []


def current_level() -> str:
    """``aal1`` or ``aal2`` for the browser's current sign-in."""
    return assurance_level(current_amr())


def begin_second_step(user: User, methods: list[str]) -> None:
    """The first step (``methods``, e.g. ["pwd"]) is done and a second factor is due: nobody
    is signed in yet. This browser ends any session it had and remembers, in its signed
    cookie and for ``SECOND_STEP_TTL`` seconds, who is half-way through."""
    browser_sessions.end(session.get("_user_id"))
    logout_user()
    session.clear()
    session[SECOND_STEP_KEY] = {
        "user": user.id,
        "epoch": user.session_epoch,
        "at": time.time(),
        "amr": list(methods),
    }


def second_step_user() -> User | None:
    """The user half-way through signing in on this browser, while the state is fresh."""
    state = session.get(SECOND_STEP_KEY)
    if not isinstance(state, dict):
        return None
    ttl = float(current_app.config["SECOND_STEP_TTL"])
    if time.time() - float(state.get("at") or 0) > ttl:
        session.pop(SECOND_STEP_KEY, None)
        return None
    user = User.get_or_none(User.id == str(state.get("user")))
    if user is None or user.disabled or user.session_epoch != state.get("epoch"):
        session.pop(SECOND_STEP_KEY, None)
        return None
    return user


def finish_second_step(user: User, method: str) -> None:
    """The second factor ``method`` is proven: sign in with both steps in ``amr``. Also the
    step-up of a signed-in user (their first step is kept); a new session either way."""
    state = session.get(SECOND_STEP_KEY)
    first = state.get("amr") if isinstance(state, dict) else current_amr()
    methods = [m for m in (first or ["pwd"]) if m != method] + [method]
    sign_in(user, amr=methods)


def sign_out() -> None:
    """End this browser's session (audited when someone was signed in)."""
    user_id = current_user.id if current_user.is_authenticated else None  # before the row goes
    with write_transaction():
        browser_sessions.end(session.get("_user_id"))
        if user_id is not None:
            audit.record("logout", user_id=user_id)
    logout_user()
    session.clear()


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
