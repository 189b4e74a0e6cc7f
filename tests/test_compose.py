"""The shipped docker-compose.yml, .env.example, Dockerfile and monitoring files, checked without a Docker engine.

No Docker daemon runs here, so images are not built or started. What is checked: the compose
file against the Compose specification's JSON schema (.ci/compose_spec.json, vendored from
the compose-spec schema shipped by docker-compose 1.29.2), `docker-compose config -q` when a
docker-compose binary exists, the structure the issue asks for (migrate step, healthchecks
that run `flask ops check`, a scalable worker, AOF Redis, wppconnect keyed by our secret),
that .env.example names every variable webapp/config.py reads, that the image installs only
the runtime requirements, and that the Grafana dashboard reads metrics /metrics exposes.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml
from jsonschema import Draft201909Validator

from webapp.config import ROOT

PROCESSES = ("web", "worker", "scheduler", "mailbox")
# Set by docker-compose.yml itself (or meaningless in a container), not by the operator's .env.
SET_BY_COMPOSE = {"PAYWATCH_ENV", "DATABASE_URL", "REDIS_URL", "PAYWATCH_INSTANCE_PATH", "WPPCONNECT_URL",
                  "WPPCONNECT_TOKEN", "WPPCONNECT_TIMEOUT", "PAYWATCH_LOGIN_RATE_LIMIT", "PORT"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_the_compose_file_follows_the_compose_specification(compose):
    schema = json.loads((ROOT / ".ci" / "compose_spec.json").read_text())
    errors = sorted(Draft201909Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_docker_compose_config_accepts_it(tmp_path):
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("no docker-compose binary here; the schema test above checks the file instead")
    for name in ("docker-compose.yml", ".env.example"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    for profile in ([], ["--profile", "monitoring"]):
        done = subprocess.run([binary, *profile, "config", "-q"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr


def test_every_process_waits_for_migrations_and_has_a_healthcheck_that_does_its_job(compose):
    services = compose["services"]
    assert services["migrate"]["restart"] == "no" and "db upgrade" in " ".join(services["migrate"]["command"])
    for name in PROCESSES:
        service = services[name]
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
        assert service["env_file"] == [".env"], name
        assert service["volumes"] == ["${PAYWATCH_SOURCES_DIR:-./instance/sources}:/app/sources:ro"], name
        check = service["healthcheck"]["test"]
        if name == "web":
            assert "/healthz" in " ".join(check)
        else:
            part = {"mailbox": "watcher"}.get(name, name)
            assert check == ["CMD", "flask", "--app", "wsgi", "ops", "check", part], name
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker  # --scale worker=4 works
    assert "--with-scheduler" in worker["command"][-1]


def test_redis_keeps_an_append_only_file_and_wppconnect_uses_our_secret_key(compose):
    redis = compose["services"]["redis"]
    assert redis["command"][:3] == ["redis-server", "--appendonly", "yes"] and redis["volumes"] == ["redisdata:/data"]
    assert compose["services"]["postgres"]["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    wpp = compose["services"]["wppconnect"]
    assert wpp["image"].startswith("wppconnect/server-cli") and wpp["environment"]["SECRET_KEY"].startswith(
        "${WPPCONNECT_SECRET_KEY")
    assert compose["x-paywatch-base"]["environment"]["WPPCONNECT_URL"] == "${WPPCONNECT_URL:-http://wppconnect:21465}"


def test_env_example_names_every_variable_the_app_reads():
    read = set(re.findall(r'_(?:read|int|bool|choice|emails)\(env, "([A-Z_]+)"', (ROOT / "webapp/config.py").read_text()))
    assert {"SECRET_KEY", "PAYWATCH_SMTP_URL", "LOG_FORMAT"} <= read
    example = (ROOT / ".env.example").read_text()
    named = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, re.M))
    missing = sorted(read - named - SET_BY_COMPOSE)
    assert not missing, f".env.example does not name {missing}"


def test_the_image_installs_only_the_runtime_requirements():
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = re.findall(r"pip install[^\n]*", dockerfile)
    assert installs == ["pip install --no-cache-dir -r requirements.txt"]
    assert "requirements-dev" not in dockerfile
    packages = re.findall(r"apt-get install -y --no-install-recommends ([^\\\n&]*)", dockerfile)
    assert [p.split() for p in packages] == [["postgresql-client"]]  # pg_dump / pg_restore for db backup
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", "instance", "tests", ".git"} <= set(ignored)


def test_prometheus_scrapes_with_the_token_and_grafana_reads_metrics_we_expose(app, client, login_as):
    prometheus = yaml.safe_load((ROOT / "docs/monitoring/prometheus.yml").read_text())
    job = prometheus["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics" and job["authorization"]["credentials_file"] == "/prometheus/metrics_token"
    dashboard = json.loads((ROOT / "docs/monitoring/grafana/dashboards/paywatch.json").read_text())
    wanted = {name for p in dashboard["panels"] for t in p["targets"] for name in re.findall(r"paywatch_[a-z_]+", t["expr"])}
    assert len(wanted) == 6
    login_as("admin")
    exposed = client.get("/metrics").get_data(as_text=True)
    def exposes(name: str) -> bool:  # a histogram's _bucket/_sum/_count series are typed under its own name
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        return f"# TYPE {name} " in exposed or f"# TYPE {family} histogram" in exposed

    missing = sorted(name for name in wanted if not exposes(name))
    assert not missing, f"the dashboard reads metrics /metrics does not expose: {missing}"
