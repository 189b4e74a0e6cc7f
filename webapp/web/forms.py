"""Flask-WTF forms (every POST carries the CSRF token through them or the HTMX header)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length

from webapp.domain.accounts import MIN_PASSWORD
from webapp.storage.models import Role

ROLE_CHOICES = [SelectChoice(r) for r in Role.ALL]


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired()])


class PasswordChangeForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired()])
    new = PasswordField("New password", validators=[DataRequired(), Length(min=MIN_PASSWORD)])
    confirm = PasswordField("Repeat the new password", validators=[EqualTo("new", "The two passwords differ")])


class UserCreateForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    name = StringField("Name", validators=[Length(max=120)])
    role = SelectField("Role", choices=ROLE_CHOICES, default=Role.STAFF)
    password = PasswordField("Password", validators=[DataRequired(), Length(min=MIN_PASSWORD)])


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)
