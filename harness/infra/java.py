"""Finding a Java runtime that can run the Kafka broker (Java 17 or newer)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from harness.infra.errors import InfraError

MIN_JAVA_MAJOR = 17
INSTALL_HINT = "install it with `make deps` (apt-get install -y openjdk-17-jre-headless)"


def find_java() -> Path:
    """The java executable from JAVA_HOME or PATH, checked to be Java 17+."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate is None or not candidate.exists():
        found = shutil.which("java")
        if found is None:
            raise InfraError(
                f"Java was not found (JAVA_HOME unset and no java on PATH); {INSTALL_HINT}"
            )
        candidate = Path(found)
    major = java_major_version(candidate)
    if major < MIN_JAVA_MAJOR:
        raise InfraError(
            f"{candidate} is Java {major}; the Kafka 4 broker needs Java {MIN_JAVA_MAJOR}+; "
            f"{INSTALL_HINT}"
        )
    return candidate


def java_major_version(java: Path) -> int:
    """Major version printed by `java -version` (1.8 -> 8, 17.0.15 -> 17)."""
    proc = subprocess.run(
        [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
    )
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if match is None:
        raise InfraError(f"could not read the version of {java}: {proc.stderr.strip()[:200]}")
    first, second = int(match.group(1)), int(match.group(2) or 0)
    return second if first == 1 else first
