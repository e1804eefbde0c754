"""The feed_sim process: IQFeed ports, the pacing engine, timers and the control API.

`FeedSimServer` is the composition root of a serving simulator: it binds the four IQFeed
ports (loopback by default), owns the `FeedEngine`, sends `T` timestamps once a second on the
streaming ports and `S,STATS` once a second on the admin port, and serves the control API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.endpoints import DEFAULT_CONTROL_PORT, FEED_PORTS
from feed_sim.control import ControlError, ControlServer, Handler
from feed_sim.protocol.system import (
    ClientStats,
    ClientType,
    ConnectionStats,
    render_client_stats,
    render_stats,
    render_timestamp,
)
from feed_sim.server.engine import FeedEngine, RateSettings
from feed_sim.server.faults import FaultInjector
from feed_sim.server.sessions import (
    AdminSession,
    Level1Session,
    Level2Session,
    LookupSession,
    Session,
)
from feed_sim.tape.format import load_tape
from feed_sim.tape.model import Kind, TapeEvent

log = logging.getLogger(__name__)

SESSION_TYPES: dict[str, type[Session]] = {
    "level1": Level1Session,
    "level2": Level2Session,
    "admin": AdminSession,
    "lookup": LookupSession,
}


@dataclass
class ServeConfig:
    """Where and how feed_sim serves. Port 0 picks a free port (tests)."""

    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=lambda: dict(FEED_PORTS))
    control_host: str = "127.0.0.1"
    control_port: int = DEFAULT_CONTROL_PORT
    symbol_limit: int = 500
    max_client_buffer: int = 16 * 1024 * 1024
    dtn_server_ip: str = "66.112.156.224"
    dtn_server_port: int = 60002


def group_by_symbol(events: Iterable[TapeEvent]) -> dict[str, list[TapeEvent]]:
    """Tape events per symbol (RAW recorded lines are skipped: they need converting first)."""
    grouped: dict[str, list[TapeEvent]] = {}
    for event in events:
        if event.kind != Kind.RAW:
            grouped.setdefault(event.symbol, []).append(event)
    return grouped


class FeedSimServer:
    """A running simulator: servers, engine, timers and control API."""

    def __init__(self, config: ServeConfig | None = None, engine: FeedEngine | None = None) -> None:
        self.config = config or ServeConfig()
        self.engine = engine or FeedEngine(
            symbol_limit=self.config.symbol_limit, max_client_buffer=self.config.max_client_buffer
        )
        self.faults = FaultInjector(self.engine)
        self.login_id = "490914"
        self.handler_errors = 0
        self.bound_ports: dict[str, int] = {}
        self.control: ControlServer | None = None
        self._servers: list[asyncio.Server] = []
        self._timers: list[asyncio.Task[None]] = []
        self._client_ids: dict[str, int] = {}

    def client_sessions(self) -> list[Session]:
        """The connected client sessions (the engine knows them as watchers)."""
        return [s for s in self.engine.sessions if isinstance(s, Session)]

    def next_client_id(self, port_name: str) -> int:
        self._client_ids[port_name] = self._client_ids.get(port_name, 0) + 1
        return self._client_ids[port_name]

    def load_tapes(self, paths: Iterable[str | Path]) -> list[str]:
        """Load tape files into the engine; returns the symbols loaded."""
        loaded: list[str] = []
        for path in paths:
            header, events = load_tape(Path(path))
            grouped = group_by_symbol(events)
            names = {s: str(header.meta.get("names", {}).get(s, "")) for s in grouped}
            self.engine.load_events(grouped, names)
            self.engine.amplified = self.engine.amplified or header.amplified
            self.engine.tape_sources.append(f"{path} ({header.source})")
            loaded += list(grouped)
        return loaded

    async def start(self, with_control: bool = True) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.config
        for name, port in cfg.ports.items():
            session_type = SESSION_TYPES[name]
            server = await loop.create_server(
                self._factory(session_type), cfg.host, port, reuse_address=True
            )
            self._servers.append(server)
            self.bound_ports[name] = int(server.sockets[0].getsockname()[1])
        if with_control:
            self.control = ControlServer(self.routes(), loop, cfg.control_host, cfg.control_port)
            self.control.start()
            self.bound_ports["control"] = self.control.port
        self._timers = [
            loop.create_task(self._every_second(self._send_timestamps), name="timestamps"),
            loop.create_task(self._every_second(self._send_admin_stats), name="admin-stats"),
        ]

    def _factory(self, session_type: type[Session]) -> Callable[[], Session]:
        return lambda: session_type(self)

    async def close(self) -> None:
        """Stop pacing, timers, servers and the control API; cut every client."""
        await self.engine.stop()
        for task in self._timers:
            task.cancel()
        for task in self._timers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for server in self._servers:
            server.close()
        for session in self.client_sessions():
            session.abort()
        for server in self._servers:
            await server.wait_closed()
        if self.control is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.control.close)
            self.control = None

    # -- timers -------------------------------------------------------------------------------

    async def _every_second(self, action: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            await asyncio.sleep(1.0 - (now % 1.0))
            try:
                action()
            except Exception:
                log.exception("timer %s failed", action)

    def _send_timestamps(self) -> None:
        line = render_timestamp(self.engine.clock_ns())
        for session in self.client_sessions():
            if session.port_name in ("level1", "level2") and session.timestamps_on:
                session.queue(line)
                session.flush()

    def _send_admin_stats(self) -> None:
        admins = [s for s in self.engine.sessions if isinstance(s, AdminSession)]
        if not admins:
            return
        stats = self.render_stats()
        client_rows = b"".join(self._client_stats_rows())
        for session in admins:
            session.queue(stats)
            if session.client_stats_on:
                session.queue(client_rows)
            session.flush()

    def render_stats(self) -> bytes:
        engine = self.engine
        now = engine.clock_ns()
        uptime = max(1e-9, (now - engine.started_ns) / 1e9)
        sessions = self.client_sessions()
        sent_kb = sum(s.bytes_out for s in sessions) / 1024
        received_kb = sum(s.bytes_in for s in sessions) / 1024
        return render_stats(
            ConnectionStats(
                server_ip=self.config.dtn_server_ip,
                server_port=self.config.dtn_server_port,
                max_symbols=engine.symbol_limit,
                symbols=engine.watched_level1_symbols(),
                clients=len(engine.sessions),
                start_ns=engine.started_ns,
                market_ns=now,
                login_id=self.login_id,
                kb_received=sent_kb,
                avg_kbps_received=sent_kb / uptime,
                kb_sent=received_kb,
                avg_kbps_sent=received_kb / uptime,
            )
        )

    def _client_stats_rows(self) -> list[bytes]:
        types = {
            0: ClientType.ADMIN,
            1: ClientType.LEVEL1,
            2: ClientType.LEVEL2,
            3: ClientType.LOOKUP,
        }
        rows = []
        for s in sorted(self.client_sessions(), key=lambda s: (s.client_type, s.client_id)):
            streaming = s.port_name in ("level1", "level2")
            rows.append(
                render_client_stats(
                    ClientStats(
                        types[s.client_type],
                        s.client_id,
                        s.client_name,
                        s.connected_ns,
                        s.watch_count() if streaming else None,
                        len(getattr(s, "regional", ())) if s.port_name == "level1" else None,
                        s.bytes_in / 1024,
                        s.bytes_out / 1024,
                        (s.transport.get_write_buffer_size() / 1024) if s.transport else 0.0,
                    )
                )
            )
        return rows

    # -- control API ----------------------------------------------------------------------------

    def routes(self) -> dict[str, Handler]:
        engine = self.engine

        async def status(_: dict[str, Any]) -> Any:
            return {
                **engine.status(),
                "ports": self.bound_ports,
                "handler_errors": self.handler_errors,
            }

        async def counters(body: dict[str, Any]) -> Any:
            label = body.get("stage") or engine.counters.label
            if label == engine.counters.label:
                engine.record_lateness()  # the current stage's buffered lateness values
            stage = engine.stages.get(str(label))
            if stage is None:
                raise ControlError(f"no stage {label!r}; stages: {sorted(engine.stages)}")
            return stage.to_json()

        async def tapes(body: dict[str, Any]) -> Any:
            paths = _string_list(body, "paths")
            try:
                return {"loaded": self.load_tapes(paths)}
            except (OSError, ValueError) as exc:
                raise ControlError(str(exc)) from exc

        async def symbols(body: dict[str, Any]) -> Any:
            unknown = engine.set_active(_string_list(body, "symbols"))
            return {"active": len(engine.active), "unknown": unknown}

        async def rate(body: dict[str, Any]) -> Any:
            try:
                settings = RateSettings(
                    mode=str(body.get("mode", engine.rate.mode)),
                    rate_hz=float(body.get("rate_hz", engine.rate.rate_hz)),
                    l2_rate_hz=float(body.get("l2_rate_hz", engine.rate.l2_rate_hz)),
                    weights={str(k): float(v) for k, v in dict(body.get("weights", {})).items()},
                    l2_weights={
                        str(k): float(v) for k, v in dict(body.get("l2_weights", {})).items()
                    },
                    speed=float(body.get("speed", engine.rate.speed)),
                    render=str(body.get("render", engine.rate.render)),
                )
                engine.set_rate(settings)
            except (TypeError, ValueError) as exc:
                raise ControlError(str(exc)) from exc
            return engine.status()

        async def stage(body: dict[str, Any]) -> Any:
            label = str(body.get("label") or "")
            if not label:
                raise ControlError("stage needs a non-empty label")
            engine.begin_stage(label)
            return {"stage": label}

        async def start(_: dict[str, Any]) -> Any:
            engine.start()
            return engine.status()

        async def stop(_: dict[str, Any]) -> Any:
            await engine.stop()
            return engine.status()

        async def pause(_: dict[str, Any]) -> Any:
            engine.pause()
            return engine.status()

        async def resume(_: dict[str, Any]) -> Any:
            engine.resume()
            return engine.status()

        async def drop(body: dict[str, Any]) -> Any:
            return {"dropped": self.faults.drop_clients(str(body.get("port", "all")))}

        async def stall(body: dict[str, Any]) -> Any:
            self.faults.stall(_positive(body, "ms"))
            return {"stalled_ms": body["ms"]}

        async def burst(body: dict[str, Any]) -> Any:
            factor, seconds = _positive(body, "factor"), _positive(body, "seconds")
            asyncio.get_running_loop().create_task(self.faults.burst(factor, seconds))
            return {"factor": factor, "seconds": seconds}

        async def malformed(body: dict[str, Any]) -> Any:
            count = int(_positive(body, "count"))
            return {"sent": self.faults.send_malformed(count, str(body.get("port", "level1")))}

        async def disconnect(body: dict[str, Any]) -> Any:
            ms = _positive(body, "ms")
            asyncio.get_running_loop().create_task(self.faults.server_disconnect(ms))
            return {"disconnected_ms": ms}

        return {
            "GET /status": status,
            "GET /counters": counters,
            "POST /tapes": tapes,
            "POST /symbols": symbols,
            "POST /rate": rate,
            "POST /stage": stage,
            "POST /start": start,
            "POST /stop": stop,
            "POST /pause": pause,
            "POST /resume": resume,
            "POST /faults/drop": drop,
            "POST /faults/stall": stall,
            "POST /faults/burst": burst,
            "POST /faults/malformed": malformed,
            "POST /faults/disconnect": disconnect,
        }


def _string_list(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ControlError(f"{key!r} must be a list of strings")
    return list(value)


def _positive(body: dict[str, Any], key: str) -> float:
    try:
        value = float(body[key])
    except (KeyError, TypeError, ValueError) as exc:
        raise ControlError(f"{key!r} must be a number") from exc
    if value <= 0:
        raise ControlError(f"{key!r} must be > 0")
    return value
