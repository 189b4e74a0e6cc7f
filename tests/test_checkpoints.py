"""SQLite's WAL checkpoints run on a thread of each process, not inside a commit (storage/checkpoints.py)."""
import sqlite3

import pytest

from tests.conftest import wait_for
from webapp.storage import checkpoints, db
from webapp.storage.models import Event, utcnow


@pytest.fixture
def restore_checkpointer():
    """follow() is one thread per process: put back the one the app started, whatever a test did."""
    before = checkpoints.current()
    path = before.path if before is not None else None
    yield
    checkpoints.follow(path)


def _wal_database(path) -> str:
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode = wal")
    connection.execute("CREATE TABLE t (x TEXT)")
    connection.commit()
    connection.close()
    return str(path)


def test_the_app_checkpoints_what_its_commits_wrote_on_a_thread_of_its_own(app, backend):
    checkpointer = checkpoints.current()
    if backend == "postgres":
        assert checkpointer is None  # the server checkpoints
        return
    assert checkpointer is not None and checkpointer.alive
    assert checkpointer.path == db.database.obj.database
    # Its connection open (its first run): else the test's own connection would be the last to
    # close, and SQLite checkpoints and removes the log when its last connection closes.
    wait_for(lambda: checkpointer.runs > 0, timeout=30, message="the checkpoint thread's first run")
    with app.app_context(), db.database.connection_context():
        # ~1,000 pages of log, far below wal_autocheckpoint: no commit checkpoints them itself.
        with db.transaction():
            Event.insert_many([{"at": utcnow(), "actor": "test", "action": "test.fill", "subject": f"s:{i}",
                                "details": {"pad": "x" * 1500}} for i in range(2000)]).execute()
        autocheckpoint = db.database.execute_sql("PRAGMA wal_autocheckpoint").fetchone()[0]
    assert autocheckpoint == db.SQLITE_PRAGMAS["wal_autocheckpoint"]  # still the bound, should the thread stop
    # Copied back by the thread: a run that found the log at least this long and copied all of it.
    wait_for(lambda: checkpointer.last is not None and checkpointer.last[0] >= 750
             and checkpointer.last[1] == checkpointer.last[0],
             timeout=30, message="the checkpoint thread to copy the log back")
    assert checkpointer.last_error is None


def test_following_another_database_stops_the_thread_of_the_one_before(tmp_path, restore_checkpointer):
    first = checkpoints.follow(_wal_database(tmp_path / "a.db"))
    assert first.alive
    assert checkpoints.follow(first.path) is first  # the same database: the same thread
    second = checkpoints.follow(_wal_database(tmp_path / "b #2 ?x=%41.db"))  # a name a URI would misread
    assert second is not first and second.alive and not first.alive
    wait_for(lambda: second.runs > 0, timeout=30, message=f"a checkpoint of the second ({second.last_error})")
    assert second.last[0] >= 0  # it found a database in WAL mode (-1: another, new, file)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm"))) == \
        ["a.db", "b #2 ?x=%41.db"]
    assert checkpoints.follow(None) is None  # PostgreSQL: no thread
    assert not second.alive


def test_a_database_file_that_is_not_there_is_never_created(tmp_path):
    missing = tmp_path / "not-yet.db"
    checkpointer = checkpoints.Checkpointer(str(missing))  # not started: its turns are taken here
    checkpointer.turn()
    checkpointer.turn()
    assert checkpointer.runs == 0 and checkpointer.last_error is None and not missing.exists()
    _wal_database(missing)  # the first connection creates it: from then on it is checkpointed
    checkpointer.turn()
    assert checkpointer.runs == 1 and checkpointer.last[0] >= 0 and checkpointer.last_error is None
    checkpointer.close()
