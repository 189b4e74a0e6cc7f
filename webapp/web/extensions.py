"""Flask extensions, created unbound here and bound to an app in create_app()."""
from __future__ import annotations

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf import CSRFProtect
from htmx_flask import Htmx

csrf = CSRFProtect()
htmx = Htmx()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message_category = "warning"
login_manager.session_protection = "basic"
# Limits are declared on the routes that need them (login); none by default.
limiter = Limiter(key_func=get_remote_address, default_limits=[])
