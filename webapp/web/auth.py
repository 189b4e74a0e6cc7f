"""Log in, log out, change one's own password, see and end one's own sessions.

Flask-Login keeps a login session's key (webapp/domain/login_sessions.py) in the signed
cookie; each request loads the user through that key, so a session ended on the
server (logout, password change, deactivation) no longer opens anything, whatever
copy of the cookie is replayed.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user, login_url, login_user, logout_user

from webapp.domain import accounts, login_sessions
from webapp.storage.models import Role, User
from webapp.web.access import PUBLIC, access, actor
from webapp.web.extensions import limiter, login_manager
from webapp.web.forms import LoginForm, PasswordChangeForm

bp = Blueprint("auth", __name__)


@login_manager.user_loader
def load_user(session_key: str) -> User | None:
    """The cookie's "user id" is a login session's key: the user of that live session, or None."""
    return login_sessions.user_for(session_key)


@login_manager.unauthorized_handler
def unauthorized():
    """Not logged in (or the session ended): pages go to the login page; an HTMX request gets 401
    with HX-Redirect (htmx then loads the login page instead of swapping it into a fragment);
    JSON callers get 401 in the API's error format."""
    from webapp.web.errors import error_body, wants_json

    if request.headers.get("HX-Request") == "true":
        flash(login_manager.login_message, login_manager.login_message_category)
        page = _safe_next(urlsplit(request.headers.get("HX-Current-URL", "")).path or None)
        return "", 401, {"HX-Redirect": login_url(login_manager.login_view, next_url=page)}
    if wants_json() or request.accept_mimetypes.best == "application/json":
        return jsonify(error_body(401, "unauthorized", "log in first: the session is missing or has ended")), 401
    flash(login_manager.login_message, login_manager.login_message_category)
    page = request.full_path.rstrip("?")
    if request.method != "GET":  # back to the page the form was on (static/app.js fills it in again there)
        page = _safe_next(urlsplit(request.referrer or "").path or None)
    return redirect(login_url(login_manager.login_view, next_url=page))


def _login_email_key() -> str:
    return "login-email:" + (request.form.get("email") or "").strip().lower()


def _login_limit() -> str:
    from webapp.config import settings

    return settings().login_rate_limit


@bp.route("/login", methods=["GET", "POST"])
@access(PUBLIC)
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_login_email_key)
def login():
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data, form.password.data, remote_addr=request.remote_addr)
        if user is not None:
            session.clear()  # nothing from before the login (a CSRF token, say) carries over
            login_sessions.start(user, ip=request.remote_addr, user_agent=request.user_agent.string)
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        flash("Email or password is not right.", "error")
    return render_template("pages/auth/login.html", form=form), 200 if request.method == "GET" or form.errors == {} else 400


def _safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect after login would be a phishing aid."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("dashboard.index")


@bp.route("/logout", methods=["POST"])
@access(Role.VIEWER)
def logout():
    login_sessions.logout(current_user)
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    response = redirect(url_for("auth.login"))
    # Pages htmx kept for the back button (in localStorage) go with the session. Not "cache":
    # Chromium can take seconds over it.
    response.headers["Clear-Site-Data"] = '"storage"'
    return response


@bp.route("/account/password", methods=["GET", "POST"])
@access(Role.VIEWER)
def change_password():
    form = PasswordChangeForm()
    if form.validate_on_submit():
        try:
            accounts.change_password(current_user, form.current.data, form.new.data,
                                     keep_session=current_user.login_session_key)
        except accounts.AccountError as exc:
            form.current.errors.append(str(exc))
        else:
            flash("Your password is changed; your other sessions are logged out.", "success")
            return redirect(url_for("dashboard.index"))
    status = 400 if form.errors else 200
    return render_template("pages/auth/password.html", form=form), status


@bp.get("/account/sessions")
@access(Role.VIEWER)
def sessions():
    current = login_sessions.session_of(current_user)
    rows = list(login_sessions.live(current_user))
    return render_template("pages/auth/sessions.html", rows=rows, current_id=current.id if current else None)


@bp.post("/account/sessions/<int:session_id>/end")
@access(Role.VIEWER)
def end_session(session_id: int):
    """End one of one's own other sessions (a lost phone, a shared computer)."""
    current = login_sessions.session_of(current_user)
    if current is not None and current.id == session_id:
        abort(400, "This is the session you are using: log out instead.")
    if not login_sessions.end_one(current_user, session_id, actor=actor()):
        abort(404)
    flash("That session is logged out.", "success")
    return redirect(url_for("auth.sessions"))
