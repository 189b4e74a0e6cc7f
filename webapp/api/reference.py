"""/api/docs: the API reference, rendered on the server from the OpenAPI document (no script, no CDN)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template

from webapp.api import openapi
from webapp.web.access import PUBLIC, access

bp = Blueprint("api_reference", __name__)
_METHODS = ("get", "post", "put", "patch", "delete")


def type_of(schema: dict[str, Any]) -> tuple[str, str | None]:
    """(readable type, the component it links to or None) of a JSON Schema."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return name, name
    if "anyOf" in schema:
        parts = [type_of(part) for part in schema["anyOf"]]
        link = next((target for _, target in parts if target), None)
        return " or ".join(text for text, _ in parts), link
    kind = schema.get("type", "any")
    if kind == "array":
        text, link = type_of(schema.get("items", {}))
        return f"array of {text}", link
    text = " or ".join(kind) if isinstance(kind, list) else kind
    if schema.get("format"):
        text += f" ({schema['format']})"
    return text, None


def constraints(schema: dict[str, Any]) -> str:
    said = []
    for key, words in (("enum", "one of"), ("pattern", "matches"), ("minimum", "≥"), ("maximum", "≤"),
                       ("maxLength", "at most {} characters"), ("default", "default"), ("examples", "e.g.")):
        if key not in schema:
            continue
        value = schema[key]
        if key == "enum":
            value = ", ".join(str(v) for v in value)
        elif key == "examples":
            value = value[0]
        said.append(words.format(value) if "{}" in words else f"{words} {value}")
    return "; ".join(said)


def fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of a schema's table: name, type, link, required, description, constraints."""
    required = set(schema.get("required", []))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        text, link = type_of(prop)
        rows.append({"name": name, "type": text, "link": link, "required": name in required,
                     "description": prop.get("description", ""), "constraints": constraints(prop)})
    return rows


def operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for path, item in document["paths"].items():
        for method in _METHODS:
            if method in item:
                spec = item[method]
                found.append({"method": method.upper(), "path": path, "spec": spec,
                              "anchor": f"{method}-{path.strip('/').replace('/', '-').replace('{', '').replace('}', '')}",
                              "parameters": [{**p, "type": type_of(p["schema"])[0], "constraints": constraints(p["schema"])}
                                             for p in spec.get("parameters", [])],
                              "body": type_of(spec["requestBody"]["content"]["application/json"]["schema"])[1]
                              if "requestBody" in spec else None,
                              "answers": [{"status": status, "description": answer["description"],
                                           "schema": type_of(answer["content"]["application/json"]["schema"])[1]
                                           if "content" in answer else None,
                                           "headers": list(answer.get("headers", {}))}
                                          for status, answer in spec["responses"].items()]})
    return sorted(found, key=lambda op: (op["path"], _METHODS.index(op["method"].lower())))


@bp.get("/api/docs")
@access(PUBLIC)
def reference():
    document = openapi.of_app(current_app)
    schemas = {name: fields(schema) for name, schema in document["components"]["schemas"].items()}
    return render_template("pages/api/reference.html", document=document, operations=operations(document),
                           schemas=schemas, descriptions={n: s.get("description", "")
                                                          for n, s in document["components"]["schemas"].items()})
