"""The users page (admins): create, change role, deactivate, reset password."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, url_for
from flask_login import current_user

from webapp.domain import accounts
from webapp.storage.models import Role, User
from webapp.web.access import access, actor
from webapp.web.forms import RoleForm, UserCreateForm
from webapp.web.htmx import render

bp = Blueprint("users", __name__, url_prefix="/users")


def _page(form: UserCreateForm | None = None, status: int = 200, new_password: tuple[str, str] | None = None):
    users = User.select().order_by(User.is_active.desc(), User.email)
    return render(
        "pages/users/index.html",
        "partials/users/table.html",
        status=status,
        users=users,
        form=form or UserCreateForm(),
        role_form=RoleForm(),
        roles=Role.ALL,
        new_password=new_password,
    )


@bp.get("/")
@access(Role.ADMIN)
def index():
    return _page()


@bp.post("/")
@access(Role.ADMIN)
def create():
    form = UserCreateForm()
    if form.validate_on_submit():
        try:
            user = accounts.create_user(form.email.data, form.password.data, form.role.data, form.name.data, actor=actor())
        except accounts.AccountError as exc:
            form.email.errors.append(str(exc))
        else:
            flash(f"User {user.email} created as {user.role}.", "success")
            return redirect(url_for("users.index"))
    return _page(form, status=400)


def _user(user_id: int) -> User:
    user = User.get_or_none(User.id == user_id)
    if user is None:
        abort(404)
    return user


@bp.post("/<int:user_id>/role")
@access(Role.ADMIN)
def change_role(user_id: int):
    user = _user(user_id)
    form = RoleForm()
    if form.validate_on_submit():
        try:
            accounts.change_role(user, form.role.data, actor=actor())
            flash(f"{user.email} is now {form.role.data}.", "success")
        except accounts.AccountError as exc:
            flash(str(exc), "error")
    else:
        flash("Choose a role.", "error")
    return redirect(url_for("users.index"))


@bp.post("/<int:user_id>/active/<int:active>")
@access(Role.ADMIN)
def set_active(user_id: int, active: int):
    user = _user(user_id)
    try:
        accounts.set_active(user, bool(active), actor=actor())
        flash(f"{user.email} is {'active' if active else 'deactivated'}.", "success")
    except accounts.AccountError as exc:
        flash(str(exc), "error")
    return redirect(url_for("users.index"))


@bp.post("/<int:user_id>/reset-password")
@access(Role.ADMIN)
def reset_password(user_id: int):
    user = _user(user_id)
    own = user.id == current_user.id  # admins resetting their own keep the session they are using
    password = accounts.reset_password(user, actor=actor(), keep_session=current_user.login_session_key if own else None)
    # Shown once, in this response only: never stored, logged or put in the session cookie.
    response = _page(new_password=(user.email, password))
    response.headers["Cache-Control"] = "no-store"
    return response
