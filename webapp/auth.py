"""Log in, log out, change one's own password."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from urllib.parse import urlsplit

from webapp import accounts
from webapp.access import PUBLIC, access
from webapp.extensions import limiter, login_manager
from webapp.forms import LoginForm, PasswordChangeForm
from webapp.models import Role, User

bp = Blueprint("auth", __name__)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Session ids are "<id>:<session_version>": bumping the version logs a user out everywhere."""
    ident, _, version = user_id.partition(":")
    if not ident.isdigit() or not version.isdigit():
        return None
    user = User.get_or_none(User.id == int(ident))
    if user is None or not user.is_active or user.session_version != int(version):
        return None
    return user


def _login_email_key() -> str:
    return "login-email:" + (request.form.get("email") or "").strip().lower()


def _login_limit() -> str:
    from webapp import settings

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
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@access(Role.VIEWER)
def change_password():
    form = PasswordChangeForm()
    if form.validate_on_submit():
        try:
            accounts.change_password(current_user, form.current.data, form.new.data)
        except accounts.AccountError as exc:
            form.current.errors.append(str(exc))
        else:
            user = User.get_by_id(current_user.id)
            login_user(user)  # the session version changed: keep this session
            flash("Your password is changed; other sessions are logged out.", "success")
            return redirect(url_for("dashboard.index"))
    status = 400 if form.errors else 200
    return render_template("pages/auth/password.html", form=form), status
