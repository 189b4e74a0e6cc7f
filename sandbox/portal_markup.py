"""The sandbox portal's markup: two skins (ids, labels, field names, date formats) and the
Jinja templates of its pages, kept apart from its behaviour in sandbox/portal.py."""
from __future__ import annotations

from typing import Any

SKINS: dict[str, dict[str, Any]] = {
    "classic": {
        "columns": ["id", "created", "customer", "phone", "agent", "amount", "status", "reference"],
        "labels": {"id": "ID", "created": "Created", "customer": "Customer", "phone": "Phone",
                   "agent": "Agent", "amount": "Amount", "currency": "Currency",
                   "status": "Status", "reference": "Reference"},
        "date_format": "%Y-%m-%d %H:%M:%S",
        "timezone": "Africa/Kampala",
        "currency": "UGX",
        "fields": {"username": "username", "password": "password", "csrf": "csrf_token"},
        "status_text": {},
    },
    "ledger": {
        "columns": ["created", "id", "reference", "customer", "phone", "amount", "currency",
                    "status", "agent"],
        "labels": {"id": "Txn No.", "created": "Date", "customer": "Payer", "phone": "MSISDN",
                   "agent": "Agent Code", "amount": "Amount", "currency": "Currency",
                   "status": "State", "reference": "Payment Ref"},
        "date_format": "%d/%m/%Y %H:%M",
        "timezone": "UTC",
        "currency": "UGX",
        "fields": {"username": "login", "password": "pin", "csrf": "authenticity_token"},
        "status_text": {"Pending": "PENDING", "Completed": "SUCCESS", "Failed": "FAILED",
                        "Expired": "EXPIRED", "Cancelled": "CANCELLED"},
    },
}
TEMPLATES = {
    "error.html": """<!doctype html><html><head><title>{{ code }} {{ title }}</title></head>
<body><h1>{{ code }} {{ title }}</h1><p class="message">{{ message }}</p></body></html>""",
    "classic/base.html": """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }} · AcmePay Merchant</title></head>
<body class="classic"><header class="topbar"><strong class="brand">AcmePay Merchant</strong>
{% if user %}<span class="who">Signed in as {{ user }}</span>
<a id="logout" href="/logout">Log out</a>{% endif %}</header>
<div class="container">{% block main %}{% endblock %}</div></body></html>""",
    "classic/login.html": """{% extends "classic/base.html" %}{% block main %}<h1>Sign in</h1>
{% if error %}<p class="alert alert-error" id="login-error">{{ error }}</p>{% endif %}
<form id="login-form" method="post" action="/login">
<input type="hidden" name="{{ fields.csrf }}" value="{{ csrf }}">
<input type="hidden" name="next" value="{{ next }}">
<label>Username <input type="text" name="{{ fields.username }}" autocomplete="username"></label>
<label>Password <input type="password" name="{{ fields.password }}"></label>
<button type="submit">Sign in</button></form>{% endblock %}""",
    "classic/payments.html": """{% extends "classic/base.html" %}{% block main %}<h1>Payments</h1>
<p class="summary">{{ total }} payments</p>
<div class="table-wrap"><table id="payments" class="table payments">
<thead><tr>{% for h in headers %}<th>{{ h }}</th>{% endfor %}</tr></thead><tbody>
{% for row in rows %}<tr class="payment-row">{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>
{% else %}<tr class="empty"><td colspan="{{ headers|length }}">No payments yet.</td></tr>
{% endfor %}</tbody></table></div>
<div class="pager">{% if prev_url %}<a rel="prev" class="prev" href="{{ prev_url }}">Previous</a>{% endif %}
<span class="page">Page {{ page }} of {{ pages }}</span>
{% if next_url %}<a rel="next" class="next" href="{{ next_url }}">Next</a>{% endif %}</div>
{% endblock %}""",
    "ledger/base.html": """<!doctype html>
<html><head><title>Ledger | {{ title }}</title></head><body id="ledger">
<nav id="account-bar">{% if user %}{{ user }} &middot; <a class="signout" href="/logout">Sign out</a>
{% endif %}</nav><section id="content">{% block main %}{% endblock %}</section></body></html>""",
    "ledger/login.html": """{% extends "ledger/base.html" %}{% block main %}<h2>Merchant login</h2>
{% if error %}<p class="flash">{{ error }}</p>{% endif %}
<form class="signin" name="signin" method="post" action="/login">
<input type="hidden" name="{{ fields.csrf }}" value="{{ csrf }}">
<input type="hidden" name="next" value="{{ next }}">
<p><label for="login">Email or phone</label><input id="login" name="{{ fields.username }}"></p>
<p><label for="pin">PIN</label><input id="pin" type="password" name="{{ fields.password }}"></p>
<p><input type="submit" value="Log in"></p></form>{% endblock %}""",
    "ledger/payments.html": """{% extends "ledger/base.html" %}{% block main %}<h2>Transactions</h2>
<table id="txn-list" class="grid">
<tr class="head">{% for h in headers %}<th scope="col">{{ h }}</th>{% endfor %}</tr>
{% for row in rows %}<tr class="txn">{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}
</table><ul class="pagination">
{% if prev_url %}<li><a class="page-link" aria-label="Previous" href="{{ prev_url }}">&lsaquo;</a></li>{% endif %}
<li class="current">{{ page }}</li>
{% if next_url %}<li><a class="page-link" aria-label="Next" href="{{ next_url }}">&rsaquo;</a></li>{% endif %}
</ul>{% endblock %}""",
}
