"""rq-dashboard at /ops/rq: admins only, every change a POST with our CSRF token, its own CSP."""
import re

from rq import Queue

from tests.conftest import AuthActions
from webapp.web.ops import DASHBOARD_CSRF_COOKIE, DASHBOARD_POLICY

# rq-dashboard 0.9.0's routes, read in its web.py. A new version's routes must be read again
# (does it change state? then it must accept POST only) before this list grows.
READING = {"favicon", "queues_overview", "workers_overview", "jobs_overview", "job_view", "list_queues",
           "list_jobs", "job_info", "list_workers", "static"}
CHANGING = {"delete_job_view", "requeue_job_view", "requeue_all", "empty_queue", "compact_queue"}


def dashboard_routes(app):
    return {rule.endpoint.removeprefix("rq_dashboard."): rule for rule in app.url_map.iter_rules()
            if rule.endpoint.startswith("rq_dashboard.")}


def failing_jobs(redis_conn, run_worker, count: int) -> list[str]:
    """`count` jobs that really failed in a real worker (int("not a number") raises)."""
    fast = Queue("fast", connection=redis_conn)
    ids = [fast.enqueue("builtins.int", f"not a number {n}").id for n in range(count)]
    run_worker(queues=("fast",))
    assert sorted(fast.failed_job_registry.get_job_ids()) == sorted(ids)
    return ids


def state(redis_conn) -> dict:
    fast, slow = Queue("fast", connection=redis_conn), Queue("slow", connection=redis_conn)
    return {"failed": sorted(fast.failed_job_registry.get_job_ids()), "fast": sorted(fast.get_job_ids()),
            "slow": slow.job_ids, "jobs": sorted(k.decode() for k in redis_conn.keys("rq:job:*"))}


def test_the_changing_routes_are_exactly_those_that_accept_post(app):
    routes = dashboard_routes(app)
    assert set(routes) == READING | CHANGING
    assert {name for name, rule in routes.items() if "POST" in rule.methods} == CHANGING


def test_every_change_needs_a_post_with_our_csrf_token(app, client, login_as, redis_conn, run_worker):
    first, second, *_ = failing_jobs(redis_conn, run_worker, 4)
    slow = Queue("slow", connection=redis_conn)
    slow.enqueue("builtins.int", "1")
    slow.push_job_id("a-job-that-no-longer-exists")  # what compact removes
    login_as("admin")
    client.get("/ops/rq/")
    token = client.get_cookie(DASHBOARD_CSRF_COOKIE, path="/ops/rq").value
    changes = [f"/ops/rq/job/{first}/requeue", f"/ops/rq/job/{second}/delete", "/ops/rq/requeue/fast",
               "/ops/rq/queue/slow/queued/empty", "/ops/rq/queue/slow/compact"]
    before = state(redis_conn)
    for url in changes:
        response = client.get(url)
        allowed = set(response.headers["Allow"].split(", ")) - {"OPTIONS"}
        assert response.status_code == 405 and allowed == {"POST"}, url
        refused = client.post(url)
        assert refused.status_code == 400 and b"the form came without its token" in refused.data, url
        forged = client.post(url, headers={"X-CSRFToken": token[:-4] + "AAAA"})
        assert forged.status_code == 400, url
        assert state(redis_conn) == before, f"{url} changed something without POST + CSRF"

    def post(url):
        response = client.post(url, headers={"X-CSRFToken": token})
        assert response.status_code == 200 and response.get_json()["status"] == "OK", (url, response.data)
        return state(redis_conn)

    after = post(changes[0])
    assert first not in after["failed"] and after["fast"] == [first]
    after = post(changes[1])
    assert f"rq:job:{second}" not in after["jobs"] and second not in after["failed"]
    after = post(changes[2])
    assert after["failed"] == [] and len(after["fast"]) == 3
    assert "a-job-that-no-longer-exists" in after["slow"]
    after = post(changes[4])
    assert after["slow"] and "a-job-that-no-longer-exists" not in after["slow"]
    after = post(changes[3])
    assert after["slow"] == []


def test_only_admins_reach_the_changes(client, login_as, redis_conn):
    Queue("fast", connection=redis_conn).enqueue("builtins.int", "1")
    anonymous = client.post("/ops/rq/queue/fast/queued/empty")  # no session, no token: log in first
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    staff = login_as("staff")
    page = client.get("/ops/rq/")
    assert page.status_code == 403 and client.get_cookie(DASHBOARD_CSRF_COOKIE, path="/ops/rq") is None
    token = AuthActions(client).csrf_token("/")
    assert client.post("/ops/rq/queue/fast/queued/empty", headers={"X-CSRFToken": token}).status_code == 403
    assert Queue("fast", connection=redis_conn).count == 1 and staff.role == "staff"


def test_the_dashboard_pages_get_their_policy_a_nonce_and_the_token_cookie(client, login_as):
    login_as("admin")
    response = client.get("/ops/rq/0/view/workers")
    policy = response.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([A-Za-z0-9_-]{16,})'", policy).group(1)
    assert policy == DASHBOARD_POLICY.format(nonce=nonce) and "'unsafe-inline'" not in policy.split(";")[1]
    page = response.get_data(as_text=True)
    assert page.count(f'nonce="{nonce}"') == 1 and '<script type="text/javascript">' not in page
    assert client.get("/ops/rq/0/view/workers").headers["Content-Security-Policy"] != policy  # fresh each time
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(DASHBOARD_CSRF_COOKIE + "="))
    assert "Path=/ops/rq" in cookie and "SameSite=Strict" in cookie and "HttpOnly" not in cookie


def test_an_instance_the_dashboard_does_not_have_is_404_not_500(client, login_as):
    login_as("admin")
    assert client.get("/ops/rq/1/view/workers").status_code == 404
    assert client.get("/ops/rq/0/view/workers").status_code == 200
