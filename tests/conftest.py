"""Fixtures in the flaskr style, on real parts.

- Redis: a throw-away redis-server started for the session (flushed per test), so
  parallel runs and benches never share keys; PAYWATCH_TEST_REDIS_URL overrides it.
- Databases: every test that uses `app` runs on SQLite (a fresh file) and, when
  TEST_DATABASE_URL is set, again on PostgreSQL (a database as the template left it). The
  migrations run once per backend and run into a template; each SQLite test gets a copy of
  it (a file copy), which is several times cheaper than migrating again (tests/test_schema.py
  and test_db.py still migrate from empty). On PostgreSQL a copy (CREATE DATABASE …
  TEMPLATE) costs the server more than most tests do: each pytest process keeps two copies,
  empties one in a thread while a test runs on the other, and copies afresh only after a
  test changed a schema (_PgDatabases).
- Workers: `run_worker()` runs a real `rq worker` process in burst mode.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
import pytest
from werkzeug.routing import Rule

from webapp import create_app
from webapp.config import ROOT, load_settings
from webapp.plumbing.devstack import start_redis
from webapp.storage import db

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PASSWORD = "correct horse battery"


def _share_url_builders() -> None:
    """Werkzeug compiles each URL rule of an app into a builder function (Python source made and
    compiled); the suite makes ~1,900 apps of the same 150 rules, and that compiling was 90 of
    the 130 ms each app took to make. A rule's builder depends only on the rule's text and parsed
    parts when it has no defaults (it gets the rule it builds for as its first argument), so the
    suite compiles each once; a werkzeug without these internals is left as it is."""
    compile_builder = getattr(Rule, "_compile_builder", None)
    if compile_builder is None or getattr(compile_builder, "shared", False):
        return
    made: dict = {}

    def shared(self, append_unknown: bool = True):
        if self.defaults or not hasattr(self, "_trace"):
            return compile_builder(self, append_unknown)
        key = (self.rule, append_unknown, tuple(self._trace))
        if key not in made:
            made[key] = compile_builder(self, append_unknown)
        return made[key]

    shared.shared = True
    Rule._compile_builder = shared


_share_url_builders()


LONG = {"worker", "start_worker", "scheduler", "run_worker", "watcher", "browser", "live_server"}  # fixtures


def pytest_collection_modifyitems(config, items):
    """The long tests (real processes, browsers) first: xdist hands tests out in this order, and long
    ones handed out last would run alone at the end while the other workers sit idle."""
    def long(item) -> bool:
        return bool(item.get_closest_marker("slow") or item.get_closest_marker("browser")
                    or LONG.intersection(getattr(item, "fixturenames", ())))

    items.sort(key=lambda item: 0 if long(item) else 1)


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        both = TEST_DATABASE_URL and not metafunc.definition.get_closest_marker("one_backend")
        backends = ["sqlite"] + (["postgres"] if both else [])
        metafunc.parametrize("backend", backends, scope="function")


@pytest.fixture(scope="session")
def redis_server():
    """A throw-away redis-server of this test run's own (PAYWATCH_TEST_REDIS_URL overrides).

    Its own server, not a database of the machine's: two runs on one machine, or a bench
    beside the suite, never touch each other's keys, and a test may stop, flush and
    restart it for real.
    """
    given = os.environ.get("PAYWATCH_TEST_REDIS_URL")
    if given:
        yield None, given
        return
    folder = Path(tempfile.mkdtemp(prefix="pw-redis-"))
    local = start_redis(folder, persist=False)
    try:
        yield local, local.url
    finally:
        local.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url(redis_server):
    return redis_server[1]


class RedisControl:
    """The session's own redis-server, stopped, started again and flushed for real."""

    def __init__(self, local, url: str):
        self.local, self.url = local, url

    @property
    def running(self) -> bool:
        return self.local.process.poll() is None

    def stop(self) -> None:
        self.local.stop()

    def start(self) -> None:
        """Start it again on the same port: a brand-new, empty Redis (it keeps no data)."""
        if not self.running:
            self.local.restart()

    def flush(self) -> None:
        from redis import Redis

        conn = Redis.from_url(self.url)
        try:
            conn.flushdb()
        finally:
            conn.close()


@pytest.fixture
def redis_control(redis_server):
    """Stop / start / flush the test Redis for real; whatever the test does, it runs again afterwards."""
    local, url = redis_server
    if local is None:
        pytest.skip("PAYWATCH_TEST_REDIS_URL names a Redis this run did not start: it is never stopped")
    control = RedisControl(local, url)
    yield control
    control.start()


@pytest.fixture
def redis_conn(redis_url):
    from redis import Redis

    conn = Redis.from_url(redis_url)
    conn.flushdb()
    yield conn
    conn.close()


def _pg_url(name: str) -> str:
    """TEST_DATABASE_URL pointing at database `name` instead."""
    return urlsplit(TEST_DATABASE_URL)._replace(path="/" + name).geturl()


def _pg_admin():
    admin = psycopg2.connect(TEST_DATABASE_URL)
    admin.autocommit = True  # CREATE / DROP DATABASE cannot run inside a transaction
    return admin


def _pg_run(statement: str) -> None:
    admin = _pg_admin()
    try:
        with admin.cursor() as cur:
            cur.execute(statement)
    finally:
        admin.close()


@pytest.fixture(scope="session")
def migrated_template():
    """backend -> a database every migration has run into, built on first use, once per run."""
    built: dict[str, str] = {}
    folder = Path(tempfile.mkdtemp(prefix="pw-template-"))

    def template(backend: str) -> str:
        if backend not in built:
            if backend == "sqlite":
                built[backend] = str(folder / "template.db")
                url = f"sqlite:///{built[backend]}"
            else:
                built[backend] = "pwtpl_" + secrets.token_hex(6)
                _pg_run(f"CREATE DATABASE {built[backend]}")
                url = _pg_url(built[backend])
            database = db.make_database(url)
            db.upgrade(database)
            database.close()
        return built[backend]

    yield template
    shutil.rmtree(folder, ignore_errors=True)
    if "postgres" in built:
        _pg_run(f"DROP DATABASE IF EXISTS {built['postgres']} WITH (FORCE)")


# What a test database's schema is: relations, columns, indexes, constraints, triggers, functions,
# extensions, the migrations recorded, the database's own settings. Emptying a database gives back
# the template only when this is what the template's is.
_PG_SCHEMA = """
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema')
            AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp%')
SELECT md5(string_agg(x, E'\\n' ORDER BY x)) FROM (
  SELECT format('rel %s %s', c.oid::regclass, c.relkind) FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM ns)
  UNION ALL
  SELECT format('col %s %s %s %s %s', a.attrelid::regclass, a.attname, a.atttypid::regtype, a.attnotnull,
                pg_get_expr(d.adbin, d.adrelid))
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE c.relnamespace IN (SELECT oid FROM ns) AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  WHERE c.relnamespace IN (SELECT oid FROM ns)
  UNION ALL
  SELECT format('constraint %s %s', conname, pg_get_constraintdef(oid)) FROM pg_constraint
  WHERE connamespace IN (SELECT oid FROM ns)
  UNION ALL
  SELECT format('trigger %s %s', pg_get_triggerdef(oid), tgenabled) FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL
  SELECT format('function %s %s', oid::regprocedure, md5(prosrc)) FROM pg_proc
  WHERE pronamespace IN (SELECT oid FROM ns)
  UNION ALL
  SELECT format('extension %s %s', extname, extversion) FROM pg_extension
  UNION ALL
  SELECT format('migration %s', name) FROM schema_migration
  UNION ALL
  SELECT format('setting %s', setconfig) FROM pg_db_role_setting
  WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
) AS parts (x)
"""

# Every row but the migrations' gone, every sequence but theirs back at its start: what a copy of
# the template holds. Triggers and foreign keys are off while it runs (the tallies' triggers would
# otherwise write rows for the rows deleted), so the order of the tables does not matter.
_PG_EMPTY = """
DO $$
DECLARE r record;
BEGIN
  SET LOCAL session_replication_role = replica;
  FOR r IN SELECT c.oid::regclass AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> 'schema_migration' LOOP
    EXECUTE 'DELETE FROM ' || r.t;
  END LOOP;
  FOR r IN SELECT s.oid::regclass AS s FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace
           WHERE n.nspname = 'public' AND s.relkind = 'S' AND NOT EXISTS (
             SELECT 1 FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
             WHERE d.objid = s.oid AND d.deptype IN ('a', 'i') AND t.relname = 'schema_migration') LOOP
    EXECUTE 'ALTER SEQUENCE ' || r.s || ' RESTART';
  END LOOP;
END $$
"""


class _PgDatabases:
    """PostgreSQL databases copied from the migrated template, each emptied after its test and handed
    to a later one. A copy (CREATE DATABASE … TEMPLATE) costs the server 0.2 s idle and 1.5 s while
    the suite runs, ~870 times a run; emptying one costs ~65 ms idle, ~190 ms while the suite runs,
    so it runs in a thread while the next test runs on the other database of two. The test's other
    connections (a process that outlived it) are cut first; a test that changed the schema, or
    anything else the emptying cannot undo (_PG_SCHEMA), gets its database dropped, not reused."""

    KEEP = 2  # databases at most in use or being emptied: one test's, and the one before's

    def __init__(self, template: str):
        self.template = template
        self.schema = self._schema_of(template)
        self.clean: list[str] = []
        self.made: list[str] = []
        self.emptying: list[Future] = []  # each gives (name, reusable)
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-databases")

    @staticmethod
    def _schema_of(name: str, connection=None) -> str:
        own = connection is None
        connection = connection or psycopg2.connect(_pg_url(name))
        try:
            with connection.cursor() as cur:
                cur.execute(_PG_SCHEMA)
                return cur.fetchone()[0]
        finally:
            if own:
                connection.close()

    def _harvest(self, wait: bool) -> None:
        while self.emptying and (wait or self.emptying[0].done()):
            name, reusable = self.emptying.pop(0).result()
            if reusable:
                self.clean.append(name)
            else:
                self.made.remove(name)
            wait = False

    def take(self) -> str:
        self._harvest(wait=False)
        if not self.clean and len(self.made) >= self.KEEP:
            self._harvest(wait=True)
        if self.clean:
            return self.clean.pop()
        name = "pwtest_" + secrets.token_hex(6)
        _pg_run(f"CREATE DATABASE {name} TEMPLATE {self.template}")
        self.made.append(name)
        return name

    def give_back(self, name: str) -> None:
        self.emptying.append(self.thread.submit(self._empty, name))

    def _empty(self, name: str) -> tuple[str, bool]:
        try:
            connection = psycopg2.connect(_pg_url(name))
            connection.autocommit = True
            try:
                with connection.cursor() as cur:
                    cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND pid <> pg_backend_pid()")
                    if self._schema_of(name, connection) == self.schema:
                        cur.execute(_PG_EMPTY)
                        return name, True
            finally:
                connection.close()
        except psycopg2.Error:
            pass  # dropped below, and never handed out again
        _pg_run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        return name, False

    def close(self) -> None:
        self.thread.shutdown(wait=True)
        for name in self.made:
            _pg_run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # FORCE: a stray worker's


@pytest.fixture(scope="session")
def pg_databases(migrated_template):
    made: list[_PgDatabases] = []

    def get() -> _PgDatabases:
        if not made:
            made.append(_PgDatabases(migrated_template("postgres")))
        return made[0]

    yield get
    for databases in made:
        databases.close()


@pytest.fixture
def database_url(backend, tmp_path, migrated_template, pg_databases):
    if backend == "sqlite":
        shutil.copyfile(migrated_template(backend), tmp_path / "paywatch.db")
        yield f"sqlite:///{tmp_path / 'paywatch.db'}"
        return
    databases = pg_databases()
    name = databases.take()
    yield _pg_url(name)
    databases.give_back(name)


@pytest.fixture
def environ(database_url, redis_url, tmp_path):
    """The environment a process of this test's Paywatch runs with (app, CLI, workers)."""
    return {
        "PAYWATCH_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "test-secret-key-" + "x" * 16,
        "PAYWATCH_INSTANCE_PATH": str(tmp_path / "instance"),
        "PAYWATCH_TIMEZONE": "Africa/Kampala",
        "PAYWATCH_PHONE_REGION": "UG",
        "PAYWATCH_CURRENCY": "UGX",
        "PAYWATCH_LOGIN_RATE_LIMIT": "5 per minute",
        "PAYWATCH_ARGON2_PROFILE": "CHEAPEST",  # a password hash in microseconds, not 0.3 s, ~1,500 times a run
    }


@pytest.fixture
def settings(environ):
    return load_settings(environ)


@pytest.fixture
def app(settings, redis_conn):
    app = create_app(settings)
    app.config["TESTING"] = True
    # No app context stays pushed: requests would share its `g` (and Flask-Login's user).
    with app.app_context():
        db.upgrade()
    yield app
    if not db.database.is_closed():
        db.database.close()
    db.database.obj.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def domain(app):
    """Run domain code in an app context with a connection (not left pushed for the client)."""

    def run(fn, *args, **kwargs):
        with app.app_context(), db.database.connection_context():
            return fn(*args, **kwargs)

    return run


@pytest.fixture
def ctx(app):
    """An app context with a connection held for the whole test: domain calls inline (no client)."""
    with app.app_context(), db.database.connection_context():
        yield app


@pytest.fixture
def make_request(domain):
    """Create a request through the ledger: make_request(5000, customer_phone=…, now=…)."""
    from webapp.domain import ledger

    def make(amount_minor=5000, now=None, **fields):
        new = ledger.NewRequest(amount_minor=amount_minor, currency=fields.pop("currency", "UGX"), source="ui", **fields)
        return domain(ledger.create_request, new, actor="test", now=now)

    return make


@pytest.fixture
def make_user(app):
    """Create a user with PASSWORD: make_user("staff") -> User."""
    from webapp.domain import accounts

    def make(role: str = "staff", email: str | None = None, name: str = ""):
        with app.app_context(), db.database.connection_context():
            return accounts.create_user(email or f"{role}-{secrets.token_hex(3)}@example.com", PASSWORD, role, name, actor="test")

    return make


class AuthActions:
    def __init__(self, client):
        self._client = client

    def csrf_token(self, path: str = "/login") -> str:
        import re

        response = self._client.get(path)
        page = response.get_data(as_text=True)
        match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
            r'"X-CSRFToken": "([^"]+)"', page
        )
        assert match, f"no CSRF token on {path}: {response.status} {page[:300]}"
        return match.group(1)

    def login(self, email: str, password: str = PASSWORD):
        token = self.csrf_token("/login")
        return self._client.post("/login", data={"email": email, "password": password, "csrf_token": token})

    def logout(self):
        token = self.csrf_token("/")
        return self._client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def login_as(make_user, auth):
    """Log the test client in as a new user of `role`; returns the user."""

    def login(role: str):
        user = make_user(role)
        response = auth.login(user.email)
        assert response.status_code == 302, response.get_data(as_text=True)
        return user

    return login


def venv_bin(name: str) -> str:
    """A console script of the interpreter running the tests (the project's venv)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else shutil.which(name) or name


@pytest.fixture
def run_worker(environ):
    """Run a real rq worker in burst mode until the queues are empty; returns its output."""

    def run(queues=("fast", "default", "slow"), timeout: float = 60, scheduler: bool = False) -> str:
        args = [venv_bin("rq"), "worker", "--burst", "--url", environ["REDIS_URL"], "-w", "jobs.worker.Worker"]
        if scheduler:
            args.append("--with-scheduler")
        env = {**os.environ, **environ}
        done = subprocess.run(
            [*args, *queues], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        return output

    return run


def wait_for(condition, timeout: float = 10.0, interval: float = 0.05, message: str = "condition"):
    """Poll `condition` until it returns a truthy value or `timeout` passes (then fail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@pytest.fixture
def chromium_paths():
    """Debian's chromium and chromedriver; missing ones fail in CI and skip (with a reason) elsewhere."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        message = "Debian's chromium and chromium-driver are needed (apt-get install chromium chromium-driver)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return browser, driver


@pytest.fixture
def whatsapp(environ):
    """A running sandbox wppconnect server with a CONNECTED session; its URL and secret are
    put into `environ`, so request this fixture BEFORE `app` (and before starting workers)."""
    import requests

    from sandbox.server import ServerThread
    from sandbox.whatsapp import connect_session
    from sandbox.whatsapp import make_app as make_whatsapp

    secret, session = "sandbox-secret-key", "paywatch"
    server = ServerThread(make_whatsapp(secret, step_seconds=0.01, ack_delays=None)).start()
    environ.update(WPPCONNECT_URL=server.url, WPPCONNECT_SECRET_KEY=secret, WPPCONNECT_SESSION=session)
    connect_session(server.url, session, secret)

    class WhatsApp:
        url = server.url

        def messages(self, phone: str | None = None) -> list[dict]:
            params = {"phone": phone.lstrip("+")} if phone else {}
            return requests.get(f"{server.url}/_sandbox/messages", params=params, timeout=5).json()["messages"]

        def control(self, path: str, body: dict | None = None) -> dict:
            return requests.post(f"{server.url}/_sandbox/{path}", json=body or {}, timeout=5).json()

    yield WhatsApp()
    server.stop()


def _background(environ, name: str, args: list[str]) -> subprocess.Popen:
    """Start a process of this test's Paywatch (its output in <tmp>/<name>.log, as `process.log_path`)."""
    log_path = Path(environ["PAYWATCH_INSTANCE_PATH"]).parent / f"{name}.log"
    log = open(log_path, "w")
    # A process group of its own: stopping it stops whatever it started too (rq's scheduler process).
    process = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **environ}, stdout=log, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    process.log_path, process.log_file = log_path, log
    _BACKGROUND.append(process)
    return process


_BACKGROUND: list[subprocess.Popen] = []  # this test's background processes, for the report of a failure


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report ends with the last lines of each background process it ran."""
    report = (yield).get_result()
    if report.failed:
        for process in _BACKGROUND:
            try:
                lines = process.log_path.read_text(errors="replace").splitlines()[-120:]
            except OSError as error:
                lines = [f"(log unreadable: {error})"]
            report.sections.append((f"Captured log of background {process.log_path.name}", "\n".join(lines)))
    if call.when == "teardown":
        _BACKGROUND.clear()


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM, 20 s to finish, then SIGKILL; and nothing it started outlives it (a process left
    behind could write into the database the next test is handed)."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.log_file.close()


@pytest.fixture
def start_worker(environ, app):
    """start_worker() runs one more real `rq worker --with-scheduler` in the background; all stop at the end."""
    import redis as redis_lib
    from rq import Worker

    started: list[subprocess.Popen] = []
    conn = redis_lib.Redis.from_url(environ["REDIS_URL"])

    def start() -> subprocess.Popen:
        process = _background(environ, f"worker-{len(started) + 1}", [
            venv_bin("rq"), "worker", "--with-scheduler", "--url", environ["REDIS_URL"], "-w", "jobs.worker.Worker",
            "fast", "default", "slow"])
        started.append(process)
        # Started = registered and through its start-up (its scheduler of delayed jobs launched): idle or busy.
        wait_for(lambda: process.pid in {w.pid for w in Worker.all(connection=conn) if w.get_state() != "started"}
                 or process.poll() is not None, timeout=30, message="the worker to start")
        assert process.poll() is None, process.log_path.read_text()
        return process

    yield start
    for process in started:
        _stop(process)
    conn.close()


@pytest.fixture
def worker(start_worker):
    """A real `rq worker --with-scheduler` running in the background for the test."""
    return start_worker()


@pytest.fixture
def scheduler(environ, app):
    """The recurring scheduler process (`flask --app wsgi jobs scheduler`) running for the test."""
    process = _background(environ, "scheduler", [sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "scheduler",
                                                 "--interval", "1"])
    yield process
    _stop(process)
