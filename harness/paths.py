"""Where the project keeps things on disk: repository root, cache, run state, results."""

from __future__ import annotations

import os
from pathlib import Path

from harness.defaults import KAFKA_VERSION


def repo_root() -> Path:
    """The project checkout (the folder holding pyproject.toml and compose/)."""
    env = os.environ.get("HARNESS_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parent.parent
    if (here / "compose").is_dir():
        return here
    return Path.cwd()


def state_dir() -> Path:
    """Run state of locally started infrastructure (PIDs, ports, bootstrap address)."""
    env = os.environ.get("HARNESS_STATE_DIR")
    return Path(env).resolve() if env else repo_root() / ".harness"


def kafka_pom() -> Path:
    """The Maven file that fetches the Apache Kafka broker jars."""
    return repo_root() / "compose" / "kafka" / "pom.xml"


def kafka_jars_dir(version: str = KAFKA_VERSION) -> Path:
    """Git-ignored cache of the broker jars for one Kafka version."""
    env = os.environ.get("HARNESS_KAFKA_JARS")
    if env:
        return Path(env).resolve()
    return repo_root() / ".cache" / "kafka" / version / "jars"


def symbols_file() -> Path:
    """The production symbol universe (495 real US symbols)."""
    return repo_root() / "config" / "production_symbols.json"
