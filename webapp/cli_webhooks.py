"""flask commands for outbound webhooks: `webhooks add URL [--events E1,E2]`, `webhooks list`."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from webapp.domain import webhooks
from webapp.storage import db
from webapp.storage.models import WebhookDelivery, WebhookEndpoint

webhooks_cli = AppGroup("webhooks", help="Outbound webhook endpoints.")


@webhooks_cli.command("add")
@click.argument("url")
@click.option("--events", default="", help="comma-separated event types (all when left out)")
@click.option("--description", default="")
def webhooks_add(url: str, events: str, description: str) -> None:
    """Add an endpoint; prints its id and its whsec_… secret once."""
    names = [e.strip() for e in events.split(",") if e.strip()]
    with db.database.connection_context():
        try:
            endpoint = webhooks.create_endpoint(url, names, description=description, actor="cli")
        except webhooks.WebhookError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"webhook endpoint {endpoint.id}: {endpoint.url} ({', '.join(endpoint.events) or 'all events'})")
    click.echo(f"secret: {endpoint.secret}")
    click.echo("Shown once: store it now; receivers verify the webhook-signature header with it.")


DEMO_URL = "http://127.0.0.1:8103/demo"  # the sandbox's webhook receiver (python -m sandbox)


def add_demo_endpoint() -> None:
    """`make demo`: an endpoint for every event at the sandbox receiver (GET /_sandbox/received there)."""
    with db.database.connection_context():
        if WebhookEndpoint.select().where(WebhookEndpoint.url == DEMO_URL).exists():
            return
        try:
            webhooks.create_endpoint(DEMO_URL, description="sandbox receiver (demo)", actor="demo")
        except webhooks.WebhookError as exc:
            click.echo(f"demo webhook endpoint not added: {exc}")
            return
    click.echo(f"demo webhook endpoint {DEMO_URL} added (what arrives: http://127.0.0.1:8103/_sandbox/received)")


@webhooks_cli.command("list")
def webhooks_list() -> None:
    """Every endpoint: id, state, URL, events, and its deliveries by status."""
    with db.database.connection_context():
        rows = list(WebhookEndpoint.select().order_by(WebhookEndpoint.id))
        counts = {}
        for row in (WebhookDelivery.select(WebhookDelivery.endpoint, WebhookDelivery.status)
                    .where(WebhookDelivery.endpoint.in_([e.id for e in rows])).tuples()):
            counts.setdefault(row[0], {}).setdefault(row[1], 0)
            counts[row[0]][row[1]] += 1
    if not rows:
        click.echo("no webhook endpoints; add one with: flask --app wsgi webhooks add URL")
    for e in rows:
        state = "enabled" if e.is_active else f"disabled ({e.disabled_reason or 'by staff'})"
        tally = ", ".join(f"{n} {s}" for s, n in sorted(counts.get(e.id, {}).items())) or "no deliveries"
        click.echo(f"{e.id:<4} {state:<10} {e.url}  [{', '.join(e.events) or 'all events'}]  {tally}")
