"""The public payment page's content: who asks, how to pay (the admins' per-method instructions,
each with a QR code), the request's live status, and its absolute link (`pay_url`).

The page's settings (business name, logo, methods) are one JSON value in the Setting table
under PAGE_KEY, edited on /settings/payment-page; every change is audited. A method's QR
code encodes what its `qr` text says, with {number}, {account}, {reference}, {amount}
(plain decimal) and {currency} filled in; an empty `qr` shows no code.
"""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from webapp.domain import audit, money
from webapp.storage import db
from webapp.storage.models import PaymentRequest, RequestStatus, Setting, utcnow

PAGE_KEY = "pay_page"
METHOD_KINDS = {
    "paybill": "Paybill",
    "till": "Till (buy goods)",
    "merchant": "Merchant number",
    "bank": "Bank account",
    "mobile_money": "Mobile-money number",
}
MAX_METHODS = 6
MAX_LOGO_BYTES = 100_000
LOGO_TYPES = {"image/png", "image/jpeg", "image/webp", "image/gif"}
PLACEHOLDERS = ("number", "account", "reference", "amount", "currency")
_PLACEHOLDER = re.compile(r"\{([a-z_]*)\}")
TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

# What the customer sees for each request status (paid / in review / expired / failed / waiting).
PUBLIC_STATUS = {
    RequestStatus.PENDING: ("waiting", "Waiting for your payment"),
    RequestStatus.REVIEW: ("review", "In review: we are checking your payment"),
    RequestStatus.PAID: ("paid", "Paid, thank you"),
    RequestStatus.EXPIRED: ("expired", "Expired"),
    RequestStatus.FAILED: ("failed", "Failed"),
    RequestStatus.CANCELLED: ("cancelled", "Cancelled"),
}


class PageSettingsError(ValueError):
    """A payment-page setting that cannot be saved; the message names the field."""


def pay_url(request: PaymentRequest, public_url: str | None, fallback_base: str | None = None) -> str:
    """The request's payment page link: absolute under `public_url` (PAYWATCH_PUBLIC_URL), else
    under `fallback_base` (the host the caller was reached on), else the bare path."""
    base = (public_url or fallback_base or "").rstrip("/")
    return f"{base}/pay/{request.pay_token}"


def find_by_token(token: str) -> PaymentRequest | None:
    """The request whose page this token opens, or None (a malformed token is never queried)."""
    if not TOKEN_CHARS.match(token or ""):
        return None
    return PaymentRequest.get_or_none(PaymentRequest.pay_token == token)


# ------------------------------------------------------------------ settings


def page_settings() -> dict[str, Any]:
    """{business_name, logo (a data: URI or ""), methods: [{kind, label, number, account, instructions, qr}]}."""
    row = Setting.get_or_none(Setting.key == PAGE_KEY)
    saved = row.value if row is not None and isinstance(row.value, dict) else {}
    return {"business_name": saved.get("business_name", ""), "logo": saved.get("logo", ""),
            "methods": list(saved.get("methods", []))}


def _text(value: Any, name: str, limit: int) -> str:
    text = str(value or "").strip()
    if len(text) > limit:
        raise PageSettingsError(f"{name}: at most {limit} characters")
    return text


def clean_method(raw: dict[str, Any], position: int) -> dict[str, str] | None:
    """One method from a form row; None for a row left empty; PageSettingsError naming the field."""
    name = f"method {position}"
    values = {key: _text(raw.get(key), f"{name} {key}", limit)
              for key, limit in (("kind", 20), ("label", 80), ("number", 64), ("account", 120),
                                 ("instructions", 1000), ("qr", 300))}
    if not any(values[k] for k in ("label", "number", "account", "instructions")):
        return None
    if values["kind"] not in METHOD_KINDS:
        raise PageSettingsError(f"{name} kind: one of {', '.join(METHOD_KINDS)}")
    if not values["number"]:
        raise PageSettingsError(f"{name} number: the paybill, till, merchant, account or phone number to pay")
    unknown = sorted(set(_PLACEHOLDER.findall(values["qr"])) - set(PLACEHOLDERS))
    if unknown:
        raise PageSettingsError(f"{name} QR text: unknown placeholder {{{unknown[0]}}} "
                                f"(known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})")
    values["label"] = values["label"] or METHOD_KINDS[values["kind"]]
    return values


def logo_data_uri(content: bytes, mimetype: str) -> str:
    """A logo upload as a data: URI (the page's CSP allows data: images); PageSettingsError if unfit."""
    if mimetype not in LOGO_TYPES:
        raise PageSettingsError(f"logo: a PNG, JPEG, WebP or GIF image, not {mimetype or 'an unknown type'}")
    if len(content) > MAX_LOGO_BYTES:
        raise PageSettingsError(f"logo: at most {MAX_LOGO_BYTES // 1000} KB, this one is {len(content) // 1000} KB")
    return f"data:{mimetype};base64,{base64.b64encode(content).decode()}"


def _check_logo(logo: str) -> str:
    if not logo:
        return ""
    head, _, data = logo.partition(",")
    if not head.startswith("data:") or head[5:].removesuffix(";base64") not in LOGO_TYPES:
        raise PageSettingsError("logo: not an image this page accepts")
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise PageSettingsError("logo: the image data is damaged") from None
    return logo


def save_page_settings(business_name: str, logo: str, methods: list[dict[str, Any]], *, actor: str) -> dict[str, Any]:
    """Validate and save the page's settings (audited); PageSettingsError names the first bad field."""
    cleaned = [m for i, raw in enumerate(methods, 1) if (m := clean_method(raw, i)) is not None]
    if len(cleaned) > MAX_METHODS:
        raise PageSettingsError(f"methods: at most {MAX_METHODS}")
    value = {"business_name": _text(business_name, "business name", 120), "logo": _check_logo(logo),
             "methods": cleaned}
    with db.transaction():
        if not Setting.update(value=value, updated_at=utcnow()).where(Setting.key == PAGE_KEY).execute():
            Setting.create(key=PAGE_KEY, value=value)
        audit.record("setting.changed", f"setting:{PAGE_KEY}", actor=actor, business_name=value["business_name"],
                     methods=[m["kind"] for m in cleaned], logo=bool(value["logo"]))
    return page_settings()


# ------------------------------------------------------------------ the page


@dataclass(frozen=True)
class Method:
    kind: str
    kind_label: str
    label: str
    number: str
    account: str
    instructions: str
    qr_text: str
    qr_svg: str  # inline <svg>, or "" when the method has no QR text


@dataclass(frozen=True)
class PageView:
    request: PaymentRequest
    business_name: str
    logo: str
    amount: str
    amount_plain: str
    state: str  # waiting, review, paid, expired, failed, cancelled
    state_label: str
    voucher: str | None
    expires_at: datetime
    seconds_left: int
    methods: tuple[Method, ...]

    @property
    def final(self) -> bool:
        """Nothing will change any more: the page stops polling."""
        return self.state in ("paid", "expired", "failed", "cancelled")


def fill(text: str, values: dict[str, str]) -> str:
    """`text` with {placeholder}s replaced from `values` (unknown ones left as they are)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def qr_svg(text: str, title: str) -> str:
    """A QR code of `text` as inline SVG (segno; sized by CSS through its viewBox)."""
    import segno

    return segno.make(text, error="m").svg_inline(scale=1, border=2, omitsize=True, title=title,
                                                  svgclass="qr", lineclass="qrline", dark="#000", light="#fff")


def view(request: PaymentRequest, now: datetime | None = None, *, with_methods: bool = True) -> PageView:
    """Everything the page shows for `request`, from fresh rows (the status poll, which shows no
    payment methods, passes with_methods=False and draws no QR codes)."""
    now = now or utcnow()
    page = page_settings() if with_methods else {"business_name": "", "logo": "", "methods": []}
    amount_plain = money.to_decimal_string(request.amount_minor, request.currency)
    values = {"reference": request.reference, "amount": amount_plain, "currency": request.currency}
    methods = []
    for m in page["methods"]:
        account = fill(m.get("account", ""), values)  # a paybill's account is often the reference itself
        filled = fill(m.get("qr", ""), {**values, "number": m["number"], "account": account})
        shown = {**values, "amount": money.display(request.amount_minor, request.currency), "number": m["number"],
                 "account": account}
        instructions = fill(m.get("instructions", ""), shown)
        methods.append(Method(m["kind"], METHOD_KINDS.get(m["kind"], m["kind"]), m["label"], m["number"],
                              account, instructions, filled,
                              qr_svg(filled, f"QR code for {m['label']}") if filled else ""))
    state, label = PUBLIC_STATUS.get(request.status, ("waiting", request.status))
    if state == "waiting" and request.expires_at <= now:
        state, label = PUBLIC_STATUS[RequestStatus.EXPIRED]  # the sweep runs every 30 s; the page knows now
    voucher = next(iter(request.vouchers), None) if state == "paid" else None
    return PageView(request=request, business_name=page["business_name"], logo=page["logo"],
                    amount=money.display(request.amount_minor, request.currency), amount_plain=amount_plain,
                    state=state, state_label=label, voucher=voucher.code if voucher else None,
                    expires_at=request.expires_at, seconds_left=max(0, int((request.expires_at - now).total_seconds())),
                    methods=tuple(methods))
