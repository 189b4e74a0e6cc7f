"""The OpenAPI 3.1 document of /api/v1, built from the `@operation` declarations on the views.

Each view declares its body, query and answers with the schemas that read and shape them
(webapp.api.schema / shapes); `document(app)` walks the URL map, so an operation is documented
by one `@operation(...)` line under its route, and a route without one is left out (the tests
fail on it).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from flask import Flask

from webapp.api.schema import Schema
from webapp.api.shapes import ERROR
from webapp.domain.input_bounds import MAX_ID

PREFIX = "/api/v1"
KEYED = ("api:staff", "api:admin")  # the access levels of webapp.api.inputs.api_access
_ERRORS = {
    400: "the body is not a JSON object",
    401: "no valid API key: send Authorization: Bearer <key>",
    403: "the key's role may not make this call",
    404: "nothing has that id or reference",
    409: "the state does not allow it, or an Idempotency-Key was reused with another body",
    413: "the body is larger than 64 KiB",
    422: "a field is missing or wrong: error.details names it",
    429: "over this key's rate limit: wait Retry-After seconds",
    500: "a fault on our side, in the error format",
    503: "a part is down",
}
_RATE_HEADERS = {
    "RateLimit-Limit": "requests allowed in the window of this key's limit",
    "RateLimit-Remaining": "requests left in the current window",
    "RateLimit-Reset": "seconds until a request is allowed again in full",
}
_PARAMETER = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")


@dataclass
class Operation:
    summary: str
    answers: dict[int, Schema | None]
    body: Schema | None = None
    query: Schema | None = None
    errors: tuple[int, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    description: str = ""


def operation(summary: str, *, answers: dict[int, Schema | None], body: Schema | None = None, query: Schema | None = None,
              errors: tuple[int, ...] = (), headers: dict[str, str] | None = None, description: str = "",
              method: str | None = None) -> Callable:
    """Declare a view's contract for the document: put it right under the `@bp.get/post` line.

    `answers` maps success statuses to answer schemas (None: no body, e.g. 204); `method` declares one
    method of a view that serves several; `errors` adds the statuses only this call
    gives (401/403/429/500 come with every keyed call, 400/413/422 with a body or query, 404 with
    a path parameter); `headers` names request headers ({name: description}).
    """
    op = Operation(summary, answers, body, query, tuple(errors), dict(headers or {}), description)

    def declare(view: Callable) -> Callable:
        if method:  # one view serving several methods declares each (GET/PATCH/DELETE on one URL)
            view.openapi_methods = {**getattr(view, "openapi_methods", {}), method.upper(): op}
        else:
            view.openapi = op
        return view

    return declare


def _schemas(roots: list[Schema], bodies: set[str]) -> dict[str, Any]:
    """Every schema reachable from `roots`; those named in `bodies` as request bodies (only required fields required)."""
    found: dict[str, Schema] = {}
    todo = list(roots)
    while todo:
        schema = todo.pop()
        if schema.name not in found:
            found[schema.name] = schema
            todo.extend(schema.refs)
    return {name: found[name].openapi(answer=name not in bodies) for name in sorted(found)}


def _path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    parameters = []
    for match in _PARAMETER.finditer(rule):
        integer = match["converter"] == "int"
        schema = {"type": "integer", "minimum": 0, "maximum": MAX_ID} if integer else {"type": "string", "minLength": 1}
        parameters.append({"name": match["name"], "in": "path", "required": True, "schema": schema})
    return _PARAMETER.sub(lambda m: "{" + m["name"] + "}", rule), parameters


def _error(status: int) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": _ERRORS[status],
                              "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    if status == 429:
        answer["headers"] = {"Retry-After": {"description": "seconds to wait", "required": True,
                                             "schema": {"type": "string", "pattern": "^[0-9]+$"}},
                             **_rate_headers()}
    return answer


def _rate_headers() -> dict[str, Any]:
    return {name: {"description": text, "required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}
            for name, text in _RATE_HEADERS.items()}


def _operation(op: Operation, path_parameters: list[dict], keyed: bool, operation_id: str) -> dict[str, Any]:
    statuses = set(op.errors) | {500}
    if keyed:
        statuses |= {401, 403, 429}
    if op.body or op.query:
        statuses |= {422}
    if op.body:
        statuses |= {400, 413}
    if path_parameters:
        statuses |= {404}
    answers: dict[str, Any] = {}
    for status, schema in sorted(op.answers.items()):
        answers[str(status)] = {"description": "no content"} if schema is None else {
            "description": schema.description or schema.name,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema.name}"}}},
        }
        if keyed:
            answers[str(status)]["headers"] = _rate_headers()
    answers.update({str(status): _error(status) for status in sorted(statuses) if str(status) not in answers})
    spec: dict[str, Any] = {"operationId": operation_id, "summary": op.summary, "responses": answers}
    if op.description:
        spec["description"] = op.description
    parameters = list(path_parameters)
    parameters += [{"name": name, "in": "header", "required": False, "description": text,
                    "schema": {"type": "string", "maxLength": 255}} for name, text in op.headers.items()]
    if op.query:
        parameters += op.query.parameters()
    if parameters:
        spec["parameters"] = parameters
    if op.body:
        required = any(field.required for field in op.body.fields.values())
        spec["requestBody"] = {"required": required, "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{op.body.name}"}}}}
    spec["security"] = [{"apiKey": []}] if keyed else []
    return spec


def operations(app: Flask) -> list[tuple[str, str, Callable]]:
    """(rule, method, view) of every /api/v1 route, in URL-map order."""
    return [(rule, method, view) for rule, method, view, _ in _routes(app)]


def _routes(app: Flask) -> list[tuple[str, str, Callable, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(PREFIX + "/"):
            methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
            for method in methods:
                # operationId: the view's name ("create_request"), with the method when a view has several
                name = rule.endpoint.rsplit(".", 1)[-1] + (f"_{method.lower()}" if len(methods) > 1 else "")
                found.append((rule.rule, method, app.view_functions[rule.endpoint], name))
    return found


def document(app: Flask, version: str = "1") -> dict[str, Any]:
    """The OpenAPI 3.1 document of every declared /api/v1 operation."""
    paths: dict[str, dict[str, Any]] = {}
    roots: list[Schema] = [ERROR]
    bodies: set[str] = set()
    for rule, method, view, name in _routes(app):
        op: Operation | None = getattr(view, "openapi_methods", {}).get(method) or getattr(view, "openapi", None)
        if op is None:
            continue
        path, parameters = _path(rule)
        keyed = getattr(view, "access", None) in KEYED
        paths.setdefault(path, {})[method.lower()] = _operation(op, parameters, keyed, name)
        roots += [schema for schema in op.answers.values() if schema is not None]
        if op.body:
            roots.append(op.body)
            bodies.add(op.body.name)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Paywatch API",
            "version": version,
            "description": "Payment requests, payments seen, and the review queues. Amounts are decimal strings "
                           "in the currency's minor-unit precision (\"5000.00\"), times ISO 8601 with an offset. "
                           "Lists are newest first and paginated by cursor: pass `next_cursor` as `cursor`. "
                           "Every error has the Error shape. Each key has a rate limit (RateLimit-* headers; "
                           "429 with Retry-After over it).",
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(roots, bodies),
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "an API key: flask --app wsgi apikeys create NAME"}},
        },
    }


def of_app(app: Flask) -> dict[str, Any]:
    """`document(app)`, built once per app: its URL map is fixed once it serves."""
    built = app.extensions.get("paywatch_openapi")
    if built is None:
        built = app.extensions["paywatch_openapi"] = document(app)
    return built
