"""A real feed_sim server for tests, in this process: `serve()` runs a `FeedSimServer` on free
loopback ports (port 0) from its own asyncio loop on a background thread, the control API as
real HTTP, and always closes it on exit. The one implementation the feed_sim and ingest
integration tests share."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from feed_sim.control_client import FeedSimControl
from feed_sim.server.app import FeedSimServer, ServeConfig
from feed_sim.server.engine import RateSettings

LOOPBACK = "127.0.0.1"
R = TypeVar("R")


class RunningServer:
    """A `FeedSimServer` serving from its own asyncio loop on a background thread."""

    def __init__(self, server: FeedSimServer, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.engine = server.engine
        self.loop = loop

    def port(self, name: str) -> int:
        return self.server.bound_ports[name]

    @property
    def control_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port('control')}"

    @property
    def control(self) -> FeedSimControl:
        """A client of the server's control API."""
        return FeedSimControl(self.control_url)

    def call(self, fn: Callable[[], R], timeout: float = 30.0) -> R:
        """Run `fn()` on the server's loop thread and return its result."""

        async def run() -> R:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def pacer_alive(self) -> bool:
        task = self.engine._task
        return task is not None and not task.done()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
        """Poll `predicate` (evaluated on the loop thread) until true or `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.call(predicate):
                return True
            time.sleep(0.02)
        return False


@contextlib.contextmanager
def serve(
    tapes: list[Path],
    *,
    rate: RateSettings | None = None,
    start: bool = True,
    with_control: bool = True,
    symbol_limit: int = 500,
    max_client_buffer: int = 16 * 1024 * 1024,
) -> Iterator[RunningServer]:
    """Start a simulator on free loopback ports (port 0); always stopped on exit."""
    config = ServeConfig(
        host=LOOPBACK,
        ports={"level1": 0, "level2": 0, "admin": 0, "lookup": 0},
        control_host=LOOPBACK,
        control_port=0,
        symbol_limit=symbol_limit,
        max_client_buffer=max_client_buffer,
    )
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failure: list[BaseException] = []
    holder: list[FeedSimServer] = []

    async def setup() -> None:
        server = FeedSimServer(config)
        holder.append(server)
        server.load_tapes(tapes)
        server.engine.set_rate(rate or RateSettings(mode="fixed", rate_hz=20.0))
        await server.start(with_control=with_control)
        if start:
            server.engine.start()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(setup())
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="feed-sim-test-loop", daemon=True)
    thread.start()
    try:
        assert ready.wait(30), "feed_sim did not start within 30 s"
        if failure:
            raise failure[0]
        yield RunningServer(holder[0], loop)
    finally:
        if holder and loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(holder[0].close(), loop).result(30)
        if loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        if not loop.is_running() and not loop.is_closed():
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
