"""Forms of the requests and payments pages: create a request, record a payment, filter lists.

Each form validates and parses in one go: after `validate()` the parsed values sit
on the form (`amount_minor`, `phone`, `agent_id`, `received_utc`, …), so views hand
them straight to webapp.domain.ledger. Money is parsed with webapp.domain.money (as staff type it:
"5,000", "5 000", "5,000.50"; no rounding),
phones with webapp.domain.phones in the configured region, local times in the configured zone.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, DateTimeLocalField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, NumberRange, Optional, ValidationError

from webapp.config import settings
from webapp.domain import input_bounds, money, phones
from webapp.storage.models import Agent, PaymentStatus, RequestStatus, utcnow

REFERENCE = re.compile(r"^[A-Za-z0-9_-]{3,64}$")
RESERVED_REFERENCES = {"new"}  # /requests/new is the form, not a request


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


class Plain:
    """At most `max_length` characters and no control characters (a multi-line field keeps tab and line breaks)."""

    def __init__(self, max_length: int, *, multiline: bool = False):
        self.max_length, self.multiline = max_length, multiline
        self.field_flags = {"maxlength": max_length}

    def __call__(self, form, field) -> None:
        problem = input_bounds.text_problem(field.data or "", max_length=self.max_length, multiline=self.multiline)
        if problem:
            raise ValidationError(_sentence(problem) + ".")


def _in_range(day: date | None) -> None:
    problem = input_bounds.date_problem(day) if day else None
    if problem:
        raise ValidationError(problem)


def _currency_default() -> str:
    return settings().currency


def _parse_currency(field) -> str:
    try:
        return money.normalize_currency(field.data or "")
    except money.MoneyError as exc:
        raise ValidationError(str(exc)) from None


def typed_amount(text: str | None, currency: str, *, positive: bool = True) -> int:
    """An amount as staff type it ("5,000", "5 000", "5,000.50"; money.parse_typed) in minor units;
    ValidationError with a sentence for the form otherwise."""
    try:
        minor = money.parse_typed(text or "", currency)
    except money.MoneyError as exc:
        raise ValidationError(_sentence(str(exc).replace("amount ", "", 1)) + ".") from None
    if positive and minor <= 0:
        raise ValidationError("The amount must be more than zero.")
    return minor



def _parse_phone(text: str | None) -> str | None:
    if not (text or "").strip():
        return None
    try:
        return phones.to_e164(text, settings().phone_region)
    except phones.PhoneError as exc:
        raise ValidationError(f"{_sentence(exc.args[0])} (use e.g. +256772123456).") from None


class _MoneyForm(FlaskForm):
    """An amount (decimal string) in a currency; sets `self.amount_minor` and `self.currency_code`."""

    amount = StringField("Amount", validators=[DataRequired("Enter the amount, e.g. 5,000 or 5,000.50.")],
                         render_kw={"inputmode": "decimal", "autocomplete": "off"})
    currency = StringField("Currency", default=_currency_default, validators=[DataRequired()],
                           render_kw={"maxlength": 3, "autocapitalize": "characters"})

    amount_minor: int | None = None
    currency_code: str | None = None

    def validate_currency(self, field) -> None:
        self.currency_code = _parse_currency(field)

    def validate_amount(self, field) -> None:
        try:
            code = money.normalize_currency(self.currency.data or "")
        except money.MoneyError:
            return  # the currency field reports it
        self.amount_minor = typed_amount(field.data, code)


class RequestForm(_MoneyForm):
    """Staff create a request. After validate(): amount_minor, currency_code, phone, agent_id, expires_in."""

    customer_name = StringField("Customer name", validators=[Plain(200)])
    customer_phone = StringField("Customer phone", validators=[Plain(40)],
                                 render_kw={"inputmode": "tel", "autocomplete": "off"})
    agent = StringField("Agent code", validators=[Plain(64)], render_kw={"list": "agent-codes"})
    no_agent = BooleanField("No agent", false_values=("", "0", "false"))
    expires_in_minutes = IntegerField("Expires in (minutes)", validators=[
        Optional(), NumberRange(1, 60 * 24 * 90, "Between 1 minute and 90 days.")])
    reference = StringField("Reference (leave empty to draw one)", validators=[Plain(64)])

    phone: str | None = None
    agent_id: int | None = None

    def validate_customer_phone(self, field) -> None:
        self.phone = _parse_phone(field.data)

    def validate_agent(self, field) -> None:
        code = (field.data or "").strip()
        if not code:
            return
        agent = Agent.get_or_none(Agent.code == code)
        if agent is None:
            raise ValidationError(f"No agent has code {code!r}.")
        self.agent_id = agent.id

    def validate_reference(self, field) -> None:
        text = (field.data or "").strip()
        field.data = text
        if text and (not REFERENCE.match(text) or text.lower() in RESERVED_REFERENCES):
            raise ValidationError("3–64 letters, digits, '-' or '_'.")

    @property
    def expires_in(self) -> timedelta | None:
        minutes = self.expires_in_minutes.data
        return timedelta(minutes=minutes) if minutes else None


class PaymentForm(_MoneyForm):
    """Staff record money seen elsewhere. After validate(): amount_minor, currency_code, phone, received_utc."""

    received_at = DateTimeLocalField("Received at (local time; empty: now)", format="%Y-%m-%dT%H:%M",
                                     validators=[Optional()])
    sender_name = StringField("Sender name", validators=[Plain(200)])
    sender_phone = StringField("Sender phone", validators=[Plain(40)], render_kw={"inputmode": "tel"})
    transaction_id = StringField("Provider transaction id", validators=[Plain(128)],
                                 description="Recording the same id twice keeps one payment.")
    note = StringField("Note / reference quoted", validators=[Plain(2000)])
    evidence = TextAreaField("Evidence (paste the SMS, receipt or statement line)",
                             validators=[Plain(20000, multiline=True)], render_kw={"rows": 4})

    phone: str | None = None

    def validate_sender_phone(self, field) -> None:
        self.phone = _parse_phone(field.data)

    def validate_received_at(self, field) -> None:
        if field.data is None:
            return
        try:
            when = self.received_utc
        except OverflowError:  # year 1 or 9999 shifted by the zone's offset
            raise ValidationError(_sentence(input_bounds.TIME_RANGE) + ".") from None
        if when > utcnow() + timedelta(minutes=10):
            raise ValidationError("That time is in the future.")
        if input_bounds.time_problem(when):
            raise ValidationError(_sentence(input_bounds.TIME_RANGE) + ".")

    @property
    def received_utc(self) -> datetime:
        """The time entered, a wall-clock time in the configured zone, in UTC; now when left empty."""
        if self.received_at.data is None:
            return utcnow()
        # fold=0: on a DST overlap the earlier of the two instants.
        return self.received_at.data.replace(tzinfo=settings().zone).astimezone(utcnow().tzinfo)

    def entered(self) -> dict[str, Any]:
        """What staff typed, kept as the payment's raw evidence."""
        return {name: f.data if not isinstance(f.data, datetime) else f.data.isoformat()
                for name, f in self._fields.items() if name != "csrf_token"}


class _ListFilters(FlaskForm):
    """GET filters shared by both lists (no CSRF: reading only). Call `parse()`."""

    class Meta:
        csrf = False

    date_from = DateField("From", name="from", validators=[Optional()])
    date_to = DateField("To", name="to", validators=[Optional()])
    amount = StringField("Amount", render_kw={"inputmode": "decimal"})
    amount_min = StringField("Min", name="min", render_kw={"inputmode": "decimal"})
    amount_max = StringField("Max", name="max", render_kw={"inputmode": "decimal"})
    currency = StringField("Currency", render_kw={"maxlength": 3, "placeholder": "default"})
    q = StringField("Search", validators=[Plain(100)])

    def __init__(self, args):
        super().__init__(formdata=args)
        self.amounts: dict[str, int] = {}  # "exact" / "min" / "max" → minor units, after parse()

    def parse(self) -> bool:
        """Validate; True when every filter given is usable (errors sit on the fields)."""
        self.amounts = {}
        return self.validate()

    @property
    def currency_code(self) -> str | None:
        """The currency amounts are read in (given, else the default); None when unreadable."""
        if not (self.currency.data or "").strip():
            return settings().currency
        try:
            return money.normalize_currency(self.currency.data)
        except money.MoneyError:
            return None

    def validate_currency(self, field) -> None:
        if (field.data or "").strip():
            _parse_currency(field)

    def _amount(self, name: str, field) -> None:
        if (field.data or "").strip() and self.currency_code:
            self.amounts[name] = typed_amount(field.data, self.currency_code, positive=False)

    def validate_amount(self, field) -> None:
        self._amount("exact", field)

    def validate_amount_min(self, field) -> None:
        self._amount("min", field)

    def validate_amount_max(self, field) -> None:
        self._amount("max", field)

    def validate_date_from(self, field) -> None:
        _in_range(field.data)

    def validate_date_to(self, field) -> None:
        _in_range(field.data)
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("'To' is before 'From'.")

    def window(self) -> tuple[datetime | None, datetime | None]:
        """[start, end) in UTC for the from/to dates, both days included, read in the configured zone."""
        zone = settings().zone
        start = _local_midnight(self.date_from.data, zone)
        end = _local_midnight(self.date_to.data + timedelta(days=1), zone) if self.date_to.data else None
        return start, end

    @property
    def text(self) -> str:
        return (self.q.data or "").strip()


def _local_midnight(day: date | None, zone) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=zone) if day else None


def _choices(values) -> list[SelectChoice]:
    return [SelectChoice("", "any")] + [SelectChoice(v) for v in values]


class RequestFilters(_ListFilters):
    status = SelectField("Status", choices=_choices(RequestStatus.ALL), default="",
                         invalid_choice_message=f"Choose one of {', '.join(RequestStatus.ALL)}.")
    agent = StringField("Agent code", validators=[Plain(64)], render_kw={"list": "agent-codes"})
    no_agent = BooleanField("No agent", false_values=("", "0", "false"))


class PaymentFilters(_ListFilters):
    status = SelectField("Status", choices=_choices(PaymentStatus.ALL), default="",
                         invalid_choice_message=f"Choose one of {', '.join(PaymentStatus.ALL)}.")
    source = StringField("Source", validators=[Plain(64)])
