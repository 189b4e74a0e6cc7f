"""schemathesis (its CLI) against a live server's /api/v1/openapi.json: every operation, authenticated.

Bounded examples; 0 server errors, and every answer's status, content type, headers and body conform
to the document. The summary line is printed (pytest -s shows it).
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest

from sandbox.server import ServerThread
from tests.conftest import venv_bin
from webapp.domain import apikeys
from webapp.storage import db

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance")


@pytest.fixture
def live_api(app, make_request):
    """The test app on a real HTTP port, with an admin API key."""
    with app.app_context(), db.database.connection_context():
        key = apikeys.create("schemathesis", "admin")[1]
    make_request(5000)  # something to list and read
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a bug answers 500, as under gunicorn
    with ServerThread(app) as server:
        yield server.url, key


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_document(live_api, tmp_path):
    url, key = live_api
    run = subprocess.run(
        [venv_bin("st"), "--config-file", str(Path(__file__).with_name("schemathesis.toml")), "run", f"{url}/api/v1/openapi.json", "--header", f"Authorization: Bearer {key}",
         "--checks", CHECKS, "--max-examples", "10", "--seed", "20261206", "--workers", "1",
         "--phases", "examples,coverage,fuzzing", "--no-color", "--report", "junit", "--report-junit-path", str(tmp_path / "junit.xml")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,  # its .schemathesis/ cache stays out of the tree
    )
    summary = [line for line in run.stdout.splitlines() if line.startswith("====") and " in " in line]
    cases_line = [line.strip() for line in run.stdout.splitlines() if re.match(r"\s*\d+ generated", line)]
    print("\nschemathesis:", *summary[-1:], *cases_line)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    cases = ElementTree.parse(tmp_path / "junit.xml").getroot().iter("testcase")
    tested = {case.get("name") for case in cases if case.find("skipped") is None}
    documented = {f"{method.upper()} {path}" for path, item in _document(url)["paths"].items() for method in item}
    # Every operation of the document was run; the document itself is what schemathesis loaded.
    assert tested == documented - {"GET /api/v1/openapi.json"}


def _document(url: str) -> dict:
    import requests

    return requests.get(f"{url}/api/v1/openapi.json", timeout=10).json()
