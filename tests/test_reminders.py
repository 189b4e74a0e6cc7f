"""Reminder rules: validation naming the field, cron in the configured zone, one reminder per
customer per firing, and a dry run that queues nothing."""
from datetime import timedelta

import pytest

from tests.ledger_helpers import ago, new_request
from webapp.domain import reminders
from webapp.storage.models import Notification, Rule, utcnow

RULE = {"name": "nudge", "cron": "*/5 * * * *", "template": "Hi {{ customer_name }}, {{ reference }} is unpaid.",
        "filter": {"min_pending_minutes": 60}, "enabled": True}


@pytest.mark.parametrize("change, field", [
    ({"cron": "every day"}, "cron"),
    ({"template": "{{ nope }}"}, "template"),
    ({"name": " "}, "name"),
    ({"filter": {"colour": "red"}}, "filter"),
    ({"filter": {"amount_min": "abc"}}, "filter.amount_min"),
])
def test_a_bad_rule_is_refused_naming_the_field(ctx, change, field):
    with pytest.raises(reminders.RuleError, match=f"^{field}"):
        reminders.save({**RULE, **change}, actor="test")
    assert Rule.select().count() == 0


def test_a_rule_fires_once_per_slot_for_customers_pending_long_enough(ctx):
    old = new_request(now=ago(hours=2), expires_in=timedelta(days=1), phone="+256772000001", name="Old Customer")
    new_request(phone="+256772000002")  # too recent for the filter
    rule = reminders.save(RULE, actor="test")
    planned = reminders.plan(rule)
    assert [p.request.id for p in planned] == [old.id] and "Old Customer" in planned[0].text
    assert Notification.select().where(Notification.kind == "reminder").count() == 0  # a dry run queues nothing
    later = reminders.next_run(rule) + timedelta(seconds=1)
    assert reminders.run_due(now=later) == 1
    assert reminders.run_due(now=later) == 0  # the same firing again: claimed already
    row = Notification.get(Notification.kind == "reminder")
    assert row.phone == "+256772000001" and row.context["template"] == RULE["template"]


def test_the_next_run_is_computed_in_the_configured_zone(ctx):
    rule = reminders.save({**RULE, "cron": "0 9 * * *"}, actor="test")  # 09:00 in Africa/Kampala (UTC+3)
    assert reminders.next_run(rule, after=utcnow()).astimezone(ctx.config["PAYWATCH"].zone).hour == 9
