"""Where the tests find the team's shared reference data (../shared beside the project root,
or $HARNESS_SHARED_DIR): the real IQFeed tick history, the symbol sources."""

from __future__ import annotations

import os
from pathlib import Path

from harness.paths import repo_root


def shared_dir() -> Path:
    """The team's shared reference folder beside the project root."""
    env = os.environ.get("HARNESS_SHARED_DIR")
    return Path(env).resolve() if env else repo_root().parent / "shared"
