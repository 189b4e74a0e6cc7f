import importlib

from rq_scheduler import Scheduler

from webapp.domain import sources
from webapp.plumbing import jobqueue


def test_every_registered_job_imports():
    for name, spec in jobqueue.JOBS.items():
        module, _, func = spec.func.rpartition(".")
        assert callable(getattr(importlib.import_module(module), func)), name
        assert spec.queue in jobqueue.QUEUES and spec.timeout > 0


def test_every_recurring_job_is_registered():
    assert set(jobqueue.RECURRING) <= set(jobqueue.JOBS)


def test_a_job_runs_through_a_real_worker(app, run_worker, redis_conn):
    with app.app_context():
        job = jobqueue.enqueue("heartbeat")
    output = run_worker(("fast",))
    job.refresh()
    assert job.get_status() == "finished", output
    assert float(redis_conn.get(jobqueue.HEARTBEAT_KEY)) == job.return_value()


def test_jobs_run_enqueues_by_name(runner, redis_conn, app):
    result = runner.invoke(args=["jobs", "run", "heartbeat"])
    assert result.exit_code == 0 and "enqueued heartbeat" in result.output
    with app.app_context():
        assert jobqueue.queue("fast").count == 1


def test_jobs_run_refuses_an_unknown_name(runner):
    result = runner.invoke(args=["jobs", "run", "nope"])
    assert result.exit_code != 0 and "unknown job 'nope'" in result.output


def test_scheduling_twice_keeps_one_copy_of_each_recurring_job(runner, redis_conn):
    for _ in range(2):
        result = runner.invoke(args=["jobs", "schedule"])
        assert result.exit_code == 0, result.output
    ids = [job.id for job in Scheduler(connection=redis_conn).get_jobs()]
    assert sorted(ids) == sorted(jobqueue.recurring_id(name) for name in jobqueue.RECURRING)


def test_syncing_the_schedule_adds_what_is_missing_and_leaves_the_rest_alone(app, redis_conn):
    from webapp.domain import sources
    from webapp.storage import db

    scheduler = Scheduler(connection=redis_conn)
    with app.app_context(), db.database.connection_context():
        source = sources.save({"kind": "gateway", "name": "iotec", "interval_s": 60, "config": {
            "provider": "iotec", "auth_url": "http://x", "api_url": "http://x", "client_id_env": "A",
            "client_secret_env": "B"}}, actor="test")[0]
        first = sources.sync_schedule(scheduler)
        due = dict(scheduler.get_jobs(with_times=True))
        again = sources.sync_schedule(scheduler)
        assert again["added"] == [] and sorted(again["kept"]) == sorted(first["added"])
        assert dict(scheduler.get_jobs(with_times=True)) == due  # next runs keep their time
        redis_conn.delete(f"rq:job:{jobqueue.recurring_id('heartbeat')}")  # a job Redis lost
        sources.save({"kind": "gateway", "name": "iotec", "interval_s": 30, "config": source.config}, actor="test")
        changed = sources.sync_schedule(scheduler)
        assert sorted(changed["added"]) == sorted([jobqueue.recurring_id("heartbeat"), sources.schedule_id("iotec")])
        passes = {job.id: job for job in scheduler.get_jobs()}
        assert passes[sources.schedule_id("iotec")].meta["interval"] == 30
        sources.set_enabled("iotec", False, actor="test")
        assert sources.sync_schedule(scheduler)["removed"] == [sources.schedule_id("iotec")]


def test_several_processes_syncing_at_once_keep_one_copy_of_each_job(app, redis_conn):
    import threading

    from webapp.storage import db

    start = threading.Barrier(4)

    def sync():
        with app.app_context(), db.database.connection_context():
            start.wait()
            sources.sync_schedule(Scheduler(connection=redis_conn))

    threads = [threading.Thread(target=sync) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    ids = [job.id for job in Scheduler(connection=redis_conn).get_jobs()]
    assert sorted(ids) == sorted(jobqueue.recurring_id(name) for name in jobqueue.RECURRING)
