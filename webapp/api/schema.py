"""Declarative schemas of the JSON API: one declaration reads a body, shapes an answer and writes OpenAPI.

A `Schema` is an ordered set of named fields. `Schema.read(data)` validates a JSON body or a
query string field by field (422 naming the field, through webapp.api.inputs), `Schema.shape(values)`
refuses an answer whose keys differ from the declaration, and `Schema.openapi()` is the JSON Schema
the OpenAPI document (webapp.api.openapi) publishes. Nothing is declared twice.
"""
from __future__ import annotations

from typing import Any, Callable

from webapp.api import inputs
from webapp.domain import money

DECIMAL = r"^[0-9]{1,20}(\.[0-9]{1,6})?$"


class Field:
    """One named value: how it reads from input (when it can) and its JSON Schema.

    `check` turns the read value into what the view needs (a lookup, a finer rule); it raises
    inputs.field_error. `nullable` marks an answer field that may be null.
    """

    type_: dict[str, Any] = {}

    def __init__(self, description: str = "", *, required: bool = False, nullable: bool = False,
                 check: Callable[[Any], Any] | None = None, example: Any = None, **extra: Any):
        self.description, self.required, self.nullable = description, required, nullable
        self.check, self.example, self.extra = check, example, extra

    def openapi(self) -> dict[str, Any]:
        schema = {**self.type_, **self.extra}
        if self.nullable:
            kind = schema.get("type", [])
            schema["type"] = [*([kind] if isinstance(kind, str) else kind), "null"]
        if self.description:
            schema["description"] = self.description
        if self.example is not None:
            schema["examples"] = [self.example]
        return schema

    def parse(self, data: Any, name: str, parsed: dict[str, Any]) -> Any:
        raise TypeError(f"{type(self).__name__} is an answer field only, not an input")

    def read(self, data: Any, name: str, parsed: dict[str, Any]) -> Any:
        value = self.parse(data, name, parsed)
        return self.check(value) if self.check is not None and value is not None else value


class Text(Field):
    type_ = {"type": "string"}

    def __init__(self, description: str = "", *, max_length: int | None = 255, multiline: bool = False,
                 default: str | None = None, **kw: Any):
        super().__init__(description, **kw)
        self.max_length, self.multiline, self.default = max_length, multiline, default

    def openapi(self) -> dict[str, Any]:
        schema = super().openapi()
        if self.max_length and "maxLength" not in schema:
            schema["maxLength"] = self.max_length
        return schema

    def parse(self, data, name, parsed):
        return inputs.text(data, name, required=self.required, max_length=self.max_length,
                           default=self.default, multiline=self.multiline)


class Choice(Text):
    def __init__(self, description: str, choices: tuple[str, ...], **kw: Any):
        super().__init__(description, max_length=100, enum=list(choices), **kw)
        self.choices = choices

    def parse(self, data, name, parsed):
        value = super().parse(data, name, parsed)
        if value is not None and value not in self.choices:
            raise inputs.field_error(name, f"must be one of {', '.join(self.choices)}")
        return value


class Amount(Field):
    """A decimal string in the currency read before it ("5000.00"); more than zero."""

    type_ = {"type": "string", "pattern": DECIMAL}

    def __init__(self, description: str = "an amount as a decimal string, never a float", **kw: Any):
        kw.setdefault("example", "5000.00")
        super().__init__(description, **kw)

    def parse(self, data, name, parsed):
        return inputs.amount(data, parsed["currency"], name)


class Currency(Field):
    type_ = {"type": "string", "pattern": "^[A-Za-z]{3}$"}

    def __init__(self, description: str = "ISO 4217 code; the configured currency when left out", **kw: Any):
        kw.setdefault("example", "UGX")
        super().__init__(description, **kw)

    def parse(self, data, name, parsed):
        from webapp.config import settings

        return inputs.currency(data, settings().currency)


class Time(Field):
    type_ = {"type": "string", "format": "date-time"}

    def __init__(self, description: str = "ISO 8601 with a UTC offset", **kw: Any):
        super().__init__(description, **kw)

    def parse(self, data, name, parsed):
        return inputs.timestamp(data, name)


class Integer(Field):
    def __init__(self, description: str = "", *, low: int | None = None, high: int | None = None, **kw: Any):
        bounds = {k: v for k, v in (("minimum", low), ("maximum", high)) if v is not None}
        super().__init__(description, **bounds, **kw)
        self.low, self.high = low, high

    type_ = {"type": "integer"}

    def parse(self, data, name, parsed):
        return inputs.integer(data, name, self.low, self.high)


class Number(Field):
    type_ = {"type": "number"}


class Boolean(Field):
    type_ = {"type": "boolean"}

    def __init__(self, description: str = "", *, default: bool | None = None, **kw: Any):
        if default is not None:
            kw["default"] = default
        super().__init__(description, **kw)
        self.default_value = default

    def parse(self, data, name, parsed):
        value = data.get(name, self.default_value)
        if value is not None and not isinstance(value, bool):
            raise inputs.field_error(name, "must be true or false")
        return value


class Phone(Text):
    """A phone number, stored in E.164; `strict=False` also keeps a provider's masked number as evidence."""

    def __init__(self, description: str = "international form, e.g. +256772123456", *, strict: bool = True, **kw: Any):
        super().__init__(description, max_length=40, **kw)
        self.strict = strict

    def parse(self, data, name, parsed):
        return inputs.phone(data, name, strict=self.strict)


class Meta(Field):
    type_ = {"type": "object", "additionalProperties": True}

    def __init__(self, description: str = f"your own JSON object, at most {inputs.MAX_META} bytes; "
                 "keys starting with 'paywatch' are reserved", **kw: Any):
        super().__init__(description, **kw)

    def parse(self, data, name, parsed):
        return inputs.meta(data)


class Cursor(Text):
    def __init__(self):
        super().__init__("the next_cursor of the previous page", max_length=32)

    def parse(self, data, name, parsed):
        return inputs.decode_cursor(data.get(name))


class Json(Field):
    """Any JSON value of one type (evidence, a health check's details): answer fields only."""

    def __init__(self, kind: str | list[str], description: str = "", **kw: Any):
        super().__init__(description, type=kind, **kw)


class Ref(Field):
    """Another schema by name (components/schemas), optionally a list of it."""

    def __init__(self, schema: "Schema", description: str = "", *, many: bool = False, **kw: Any):
        super().__init__(description, **kw)
        self.schema, self.many = schema, many

    def openapi(self) -> dict[str, Any]:
        ref = {"$ref": f"#/components/schemas/{self.schema.name}"}
        if self.many:
            ref = {"type": "array", "items": ref}
        elif self.nullable:
            ref = {"anyOf": [ref, {"type": "null"}]}
        return {**ref, **({"description": self.description} if self.description else {})}


class Schema:
    """Named fields in the order they are read. `extends` copies another schema's fields first.

    `open=True` lets an answer carry keys the declaration leaves to the domain (health details);
    request bodies always ignore keys they do not declare.
    """

    def __init__(self, name: str, fields: dict[str, Field], *, description: str = "",
                 extends: "Schema | None" = None, open: bool = False):  # noqa: A002
        self.name, self.description, self.open = name, description, open
        self.fields = {**(extends.fields if extends else {}), **fields}
        self.refs = [f.schema for f in self.fields.values() if isinstance(f, Ref)]
        if extends:
            self.refs.append(extends)

    def read(self, data: Any) -> dict[str, Any]:
        """Every declared field of `data` (a JSON object or request.args), read in order; 422 on the first bad one."""
        parsed: dict[str, Any] = {}
        for name, field in self.fields.items():
            parsed[name] = field.read(data, name, parsed)
        return parsed

    def shape(self, values: dict[str, Any]) -> dict[str, Any]:
        """`values` as the answer, in declared order; a key the declaration lacks (or misses) is a bug here."""
        if not self.open and values.keys() != self.fields.keys():
            raise KeyError(f"{self.name}: answer keys differ from the schema: "
                           f"{sorted(values.keys() ^ self.fields.keys())}")
        ordered = {name: values[name] for name in self.fields if name in values}
        return {**ordered, **values} if self.open else ordered

    def openapi(self, *, answer: bool = True) -> dict[str, Any]:
        """The JSON Schema; as an answer every field is present (`required`), as input only the required ones."""
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {name: field.openapi() for name, field in self.fields.items()},
            "required": [name for name, field in self.fields.items() if answer or field.required],
        }
        if answer and not self.open:
            schema["additionalProperties"] = False
        if self.description:
            schema["description"] = self.description
        if not schema["required"]:
            del schema["required"]
        return schema

    def parameters(self, where: str = "query") -> list[dict[str, Any]]:
        """The fields as OpenAPI parameters (a query string's)."""
        return [{"name": name, "in": where, "required": field.required, "schema": field.openapi(),
                 **({"description": field.description} if field.description else {})}
                for name, field in self.fields.items()]


def money_text(amount_minor: int | None, currency: str) -> str | None:
    return None if amount_minor is None else money.to_decimal_string(amount_minor, currency)
