"""The OpenAPI document: every /api/v1 operation in it, valid 3.1, made from the schemas the views use."""
from __future__ import annotations

import re
from pathlib import Path

import jsonschema_rs
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

from webapp.api import openapi, shapes
from webapp.api.schema import Schema, Text
from webapp.domain import apikeys
from webapp.storage import db


@pytest.fixture
def document(client):
    response = client.get("/api/v1/openapi.json")  # public: no key needed to read the contract
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


@pytest.fixture
def headers(app):
    with app.app_context(), db.database.connection_context():
        return {"Authorization": f"Bearer {apikeys.create('docs', 'admin')[1]}"}


def conforms(document: dict, component: str, value) -> list[str]:
    validator = jsonschema_rs.Draft202012Validator(
        {"$ref": f"#/components/schemas/{component}", "components": document["components"]})
    return [str(error) for error in validator.iter_errors(value)]


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    assert [str(e) for e in OPENAPI_31_VALIDATOR.iter_errors(document)] == []


def test_every_api_route_is_declared_in_the_document(app, document):
    routes = {(rule, method) for rule, method, _ in openapi.operations(app)}
    documented = {(re.sub(r"\{(\w+)\}", lambda m: f"<{m[1]}>", path), method.upper())
                  for path, item in document["paths"].items() for method in item}
    undeclared = sorted(f"{method} {rule}" for rule, method in routes
                        if (re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule), method) not in documented)
    assert undeclared == [], "add @operation(...) under these routes"
    assert len(documented) == len(routes) >= 14
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(set(ids)) == len(ids) and "create_request" in ids


def test_keyed_calls_declare_bearer_auth_the_error_format_and_the_rate_limit(document):
    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "http", "scheme": "bearer", "description": "an API key: flask --app wsgi apikeys create NAME"}
    create = document["paths"]["/api/v1/requests"]["post"]
    assert create["security"] == [{"apiKey": []}]
    assert {"201", "400", "401", "403", "409", "413", "422", "429", "500"} <= set(create["responses"])
    assert create["responses"]["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert {"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(
        create["responses"]["429"]["headers"])
    assert document["paths"]["/api/v1/openapi.json"]["get"]["security"] == []


def test_amounts_are_decimal_strings_and_lists_have_cursors(document):
    schemas = document["components"]["schemas"]
    assert schemas["NewRequestInput"]["properties"]["amount"]["type"] == "string"
    assert schemas["Request"]["properties"]["amount"]["type"] == "string"
    assert schemas["Payment"]["properties"]["amount"]["type"] == ["string", "null"]
    assert set(schemas["PageOfRequest"]["properties"]) == {"data", "has_more", "next_cursor"}
    listing = {p["name"] for p in document["paths"]["/api/v1/requests"]["get"]["parameters"]}
    assert {"cursor", "limit", "status"} <= listing


def test_the_documented_input_rules_are_the_ones_the_api_enforces(client, document, headers):
    """Each text limit and required field the document states answers 422 naming that field."""
    base = {"amount": "5000", "currency": "UGX", "customer_name": "Jane", "source_ref": "r-1"}
    checked = 0
    for path, schema_name in (("/api/v1/requests", "NewRequestInput"), ("/api/v1/payments", "NewPaymentInput")):
        schema = document["components"]["schemas"][schema_name]
        for name in schema["required"]:
            body = {k: v for k, v in base.items() if k != name}
            answer = client.post(path, json=body, headers=headers)
            assert answer.status_code == 422 and name in answer.get_json()["error"]["details"], (path, name)
            checked += 1
        for name, prop in schema["properties"].items():
            if prop.get("type") == "string" and "maxLength" in prop:
                # A fresh source_ref each time: a payment's 422 is kept as the answer to its source_ref.
                body = {**base, "source_ref": f"r-{checked}", name: "7" * (prop["maxLength"] + 1)}
                answer = client.post(path, json=body, headers=headers)
                assert answer.status_code == 422, (path, name, answer.get_json())
                assert name in answer.get_json()["error"]["details"], (path, name)
                checked += 1
    assert checked >= 15


def test_answers_and_errors_match_their_schemas(client, document, headers, make_request):
    request = make_request(5000)
    body = client.get(f"/api/v1/requests/{request.reference}", headers=headers).get_json()
    assert conforms(document, "Request", body) == []
    error = client.get("/api/v1/requests/PW-NOPE99", headers=headers).get_json()
    assert conforms(document, "Error", error) == []
    assert conforms(document, "Request", {**body, "pay_later": True}) != []  # undeclared fields are refused


def test_an_answer_field_that_is_not_declared_fails_loudly():
    schema = Schema("Thing", {"name": Text()})
    assert schema.shape({"name": "x"}) == {"name": "x"}
    with pytest.raises(KeyError, match="pay_url"):
        schema.shape({"name": "x", "pay_url": "https://…"})
    with pytest.raises(KeyError, match="name"):
        schema.shape({})
    assert "pay_url" in shapes.REQUEST.fields  # declared with its serializer line: the document names it


def test_the_reference_page_shows_every_operation_and_schema_without_script(client, document):
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for path, item in document["paths"].items():
        for method in item:
            assert f"{method.upper()} {path}" in html
    for name in document["components"]["schemas"]:
        assert f'id="schema-{name}"' in html
    assert "<script>" not in html and " style=" not in html  # the strict CSP holds
    assert "Content-Security-Policy" in page.headers


def test_the_readme_links_the_reference():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "/api/docs" in readme and "/api/v1/openapi.json" in readme


def test_a_new_operation_is_one_declaration_under_its_route():
    """How the webhook-endpoint calls join the document: @operation under the route, schemas beside it."""
    from flask import Blueprint, Flask

    from webapp.api.inputs import API_ADMIN, api_access
    from webapp.api.schema import Boolean
    from webapp.api.openapi import document, operation

    change = Schema("EndpointChange", {"enabled": Boolean(), "description": Text(max_length=200)})
    endpoint = Schema("Endpoint", {"id": Text(), "enabled": Boolean()})
    bp = Blueprint("extra", __name__, url_prefix="/api/v1")

    @bp.patch("/things/<int:thing_id>")
    @operation("Change a thing", body=change, answers={200: endpoint})
    @api_access(API_ADMIN)
    def change_thing(thing_id):
        raise AssertionError("never called")

    @bp.delete("/things/<int:thing_id>")
    @operation("Delete a thing", answers={204: None})
    @api_access(API_ADMIN)
    def delete_thing(thing_id):
        raise AssertionError("never called")

    app = Flask(__name__)
    app.register_blueprint(bp)
    doc = document(app)
    patch, delete = doc["paths"]["/api/v1/things/{thing_id}"]["patch"], doc["paths"]["/api/v1/things/{thing_id}"]["delete"]
    assert patch["requestBody"]["required"] is False  # no required field: a partial change
    assert "required" not in doc["components"]["schemas"]["EndpointChange"]
    assert doc["components"]["schemas"]["Endpoint"]["required"] == ["id", "enabled"]
    assert delete["responses"]["204"]["description"] == "no content" and "content" not in delete["responses"]["204"]
    assert {"401", "403", "404", "429", "500"} <= set(delete["responses"])
    assert [str(e) for e in OPENAPI_31_VALIDATOR.iter_errors(doc)] == []
