"""A webhook receiver standing in for an integrator's server, with fault injection.

    POST <any path>          a delivery: recorded (headers, raw body, arrival time) and answered
                             with the next injected status (200 when none), after the injected delay
    POST /_sandbox/faults    {"statuses": [500, 200], "delay_s": 0.5, "retry_after": 3}: answers to come
                             (in order, then 200), a delay before every answer, a Retry-After header
    GET  /_sandbox/received  what arrived, oldest first: {id, path, headers, body, received_at, status}
    DELETE /_sandbox/received  forget it (faults too)

A receiver given `secrets` also checks each delivery's signature with the `standardwebhooks`
library, as an integrator would, and records `verified` (which of them verified it).
Run it alone: python -m sandbox.webhook_receiver --port 8103
"""
from __future__ import annotations

import argparse
import threading
import time
from dataclasses import dataclass, field

from flask import Flask, jsonify, request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from sandbox.server import ServerThread

MAX_BODY = 1024 * 1024


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    retry_after: int | None = None
    secrets: list[str] = field(default_factory=list)
    received: list[dict] = field(default_factory=list)
    lock: threading.Condition = field(default_factory=threading.Condition)

    def take(self, path: str, headers: dict, body: str) -> tuple[int, float, int | None]:
        """Record one delivery; returns (status to answer, delay, retry_after)."""
        verified = [i for i, secret in enumerate(self.secrets) if _verifies(secret, body, headers)]
        with self.lock:
            status = self.statuses.pop(0) if self.statuses else 200
            self.received.append({"id": len(self.received) + 1, "path": path, "headers": headers, "body": body,
                                  "received_at": time.time(), "status": status, "verified": verified})
            self.lock.notify_all()
            return status, self.delay_s, self.retry_after

    def wait_for(self, count: int, timeout: float) -> list[dict]:
        """Block until `count` deliveries arrived (or `timeout` passed); returns what did."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.received) < count and time.monotonic() < deadline:
                self.lock.wait(max(0.0, deadline - time.monotonic()))
            return list(self.received)

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.statuses.clear()
            self.delay_s, self.retry_after = 0.0, None


def _verifies(secret: str, body: str, headers: dict) -> bool:
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except (WebhookVerificationError, ValueError):
        return False
    return True


def make_app(*, secrets: list[str] | None = None) -> Flask:
    """The receiver app; its state is `app.extensions["receiver"]` (a Receiver)."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    state = Receiver(secrets=list(secrets or []))
    app.extensions["receiver"] = state

    @app.post("/_sandbox/faults")
    def faults():
        data = request.get_json(silent=True) or {}
        statuses = data.get("statuses") or []
        if not all(isinstance(s, int) and 100 <= s <= 599 for s in statuses):
            return jsonify({"error": "statuses must be HTTP status codes"}), 400
        with state.lock:
            state.statuses[:] = statuses
            state.delay_s = float(data.get("delay_s") or 0)
            state.retry_after = data.get("retry_after")
        return jsonify({"statuses": state.statuses, "delay_s": state.delay_s, "retry_after": state.retry_after})

    @app.post("/_sandbox/secrets")
    def set_secrets():
        state.secrets[:] = list((request.get_json(silent=True) or {}).get("secrets") or [])
        return jsonify({"secrets": len(state.secrets)})

    @app.get("/_sandbox/received")
    def received():
        with state.lock:
            return jsonify(list(state.received))

    @app.delete("/_sandbox/received")
    def forget():
        state.reset()
        return "", 204

    @app.post("/", defaults={"path": ""})
    @app.post("/<path:path>")
    def deliver(path: str):
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower().startswith(("webhook-", "content-"))}
        status, delay, retry_after = state.take("/" + path, headers, request.get_data(as_text=True))
        if delay:
            time.sleep(delay)
        response = jsonify({"received": True} if status < 300 else {"error": f"injected {status}"})
        response.status_code = status
        if retry_after is not None and status >= 400:
            response.headers["Retry-After"] = str(retry_after)
        return response

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.webhook_receiver", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8103)
    parser.add_argument("--secret", action="append", default=[], help="whsec_… to verify with (repeatable)")
    args = parser.parse_args(argv)
    server = ServerThread(make_app(secrets=args.secret), port=args.port).start()
    print(f"webhook receiver: {server.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
