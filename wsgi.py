"""The WSGI entry point: gunicorn wsgi:app, flask --app wsgi …"""
from webapp import create_app
from webapp.plumbing import heap

app = create_app()
heap.freeze_startup()  # each gunicorn worker imports this once: its app lives as long as it does
