import importlib

from rq_scheduler import Scheduler

from webapp import jobqueue


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
