"""feed_sim's control API: local HTTP/JSON on 127.0.0.1 (default port 8765), for the harness.

Every request is handed to the simulator's event loop (`asyncio.run_coroutine_threadsafe`), so
the HTTP thread never touches feed state itself. Endpoints (all bodies and replies JSON):

    GET  /status                      state, rate, clients, totals, lateness percentiles
    GET  /counters[?stage=LABEL]      per-symbol sent counts + TickID ranges, encoded lateness
    POST /tapes      {"paths": [...]} load tapes (replaces the events of their symbols)
    POST /symbols    {"symbols": [...]} set the active symbols
    POST /rate       {"mode": "fixed"|"tape"|"flat", "rate_hz": 100, "l2_rate_hz": 0,
                      "weights": {"SYM": w, ...}, "l2_weights": {"SYM": w, ...},
                      "speed": 1.0,
                      "render": "live"|"ring"}  (ring: feed_sim/server/paced_rings.py)
    POST /stage      {"label": "stage-1"}   start counting into a new stage
    POST /start | /stop | /pause | /resume
    POST /faults/drop        {"port": "level1"|"level2"|"all"}   cut client connections
    POST /faults/stall       {"ms": 500}                         send nothing for N ms
    POST /faults/burst       {"factor": 3, "seconds": 5}         rate x K for N s
    POST /faults/malformed   {"count": 10, "port": "level1"}     send garbage lines
    POST /faults/disconnect  {"ms": 2000}   S,SERVER DISCONNECTED, silence, S,SERVER CONNECTED

Errors come back as HTTP 400 {"error": "..."}; unknown paths as 404.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from contracts.endpoints import DEFAULT_CONTROL_PORT

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Coroutine[Any, Any, Any]]


class ControlError(ValueError):
    """A request the simulator refuses; becomes HTTP 400 with the message."""


class ControlServer:
    """Serves `routes` ("METHOD /path" -> async handler) over HTTP on a background thread."""

    def __init__(
        self,
        routes: dict[str, Handler],
        loop: asyncio.AbstractEventLoop,
        host: str = "127.0.0.1",
        port: int = DEFAULT_CONTROL_PORT,
        timeout_s: float = 30.0,
    ) -> None:
        self._routes = routes
        self._loop = loop
        self._timeout_s = timeout_s
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="feed-sim-control", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _dispatch(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        handler = self._routes.get(f"{method} {path}")
        if handler is None:
            return 404, {"error": f"no endpoint {method} {path}"}
        future: Future[Any] = asyncio.run_coroutine_threadsafe(handler(body), self._loop)
        try:
            return 200, future.result(timeout=self._timeout_s)
        except ControlError as exc:
            return 400, {"error": str(exc)}
        except Exception as exc:  # a bug must not kill the control thread
            log.exception("control request %s %s failed", method, path)
            return 500, {"error": f"{type(exc).__name__}: {exc}"}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                url = urlparse(self.path)
                body: dict[str, Any] = {k: v[-1] for k, v in parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    try:
                        parsed = json.loads(self.rfile.read(length))
                    except json.JSONDecodeError as exc:
                        self._reply(400, {"error": f"body is not JSON: {exc}"})
                        return
                    if not isinstance(parsed, dict):
                        self._reply(400, {"error": "body must be a JSON object"})
                        return
                    body.update(parsed)
                self._reply(*server._dispatch(method, url.path, body))

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("control: " + format, *args)

        return _Handler
