"""Named local-broker tunings: server.properties overrides plus the broker JVM's options.

`harness infra up --broker-profile NAME`, `infra.broker_profile` in a scenario and
bench/bench_kafka_produce.py pick one. Each profile is measured side by side by that
benchmark (README "Kafka producer and broker settings"); `DEFAULT_PROFILE` is the one it
showed best for the ramp on the 2-core reference machine.

- `kafka-defaults`: Apache Kafka's own defaults (3 network threads, 8 I/O threads, G1 with
  its default 200 ms pause goal), what a stock `kafka-server-start.sh` runs;
- `harness-2024`: what the harness ran before the benchmark (2 network, 4 I/O threads,
  G1 with a 20 ms pause goal);
- `small-host`: for a broker sharing 2 cores with the load generator, the SUT and the
  collector: one network thread and two I/O threads (fewer runnable threads competing for
  the cores; the request queue still holds every connection's in-flight requests), G1 with
  a 20 ms pause goal, the heap committed and touched at start (no page faults on first use),
  and the JIT's C2 compiler threads limited to one.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BrokerProfile:
    """A broker tuning: server.properties keys and the JVM options before the class path."""

    name: str
    summary: str
    properties: dict[str, str] = field(default_factory=dict)
    jvm_options: tuple[str, ...] = ()


PROFILES: dict[str, BrokerProfile] = {
    profile.name: profile
    for profile in (
        BrokerProfile(
            "kafka-defaults",
            "Apache Kafka's defaults: 3 network, 8 I/O threads, G1 (200 ms pause goal)",
            {"num.network.threads": "3", "num.io.threads": "8"},
            ("-XX:+UseG1GC",),
        ),
        BrokerProfile(
            "harness-2024",
            "2 network, 4 I/O threads, G1 with a 20 ms pause goal",
            {"num.network.threads": "2", "num.io.threads": "4"},
            ("-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"),
        ),
        BrokerProfile(
            "small-host",
            "1 network, 2 I/O threads, G1 20 ms, heap pre-touched, one C2 compiler thread",
            {"num.network.threads": "1", "num.io.threads": "2"},
            (
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-XX:+AlwaysPreTouch",
                "-XX:CICompilerCount=2",
            ),
        ),
    )
}
DEFAULT_PROFILE = "harness-2024"


def broker_profile(name: str | None) -> BrokerProfile:
    """The profile called `name` (None: the default); ValueError listing the known names."""
    key = name or DEFAULT_PROFILE
    try:
        return PROFILES[key]
    except KeyError:
        raise ValueError(
            f"unknown broker profile {key!r}; known: {', '.join(sorted(PROFILES))}"
        ) from None
