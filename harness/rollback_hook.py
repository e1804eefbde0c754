"""The scenario's rollback hook (`rollback.hook`): a command run when the plan steps back (or
after the verify hold), its exit code and the end of its output kept as event `hook_ran`; one
that cannot start or overruns its timeout is event `hook_failed`. It never decides the run."""

from __future__ import annotations

import shlex
import subprocess

from rich.console import Console

from harness import paths
from harness.results.summary import SummaryWriter

OUTPUT_KEPT_CHARS = 2000


def run_rollback_hook(
    command: str, timeout_s: float, summary: SummaryWriter, console: Console
) -> None:
    """Run the expanded hook `command` (no shell) from the project checkout."""
    console.print(f"rollback hook: {command}")
    try:
        proc = subprocess.run(
            shlex.split(command),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            cwd=paths.repo_root(),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        console.print(f"[red]rollback hook failed:[/] {exc}")
        summary.add_event("hook_failed", command=command, error=str(exc))
        return
    summary.add_event(
        "hook_ran",
        command=command,
        exit_code=proc.returncode,
        output=(proc.stdout + proc.stderr)[-OUTPUT_KEPT_CHARS:],
    )
