"""Every command explains itself; bad arguments exit 3 (contract 7)."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from harness.cli import cli


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("path", _commands(cli), ids=lambda p: " ".join(p) or "harness")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    lines = [line for line in result.output.splitlines()[2:] if line.strip()]
    assert len(lines[0].strip()) > 20, f"{path} has no description"


def test_top_level_help_lists_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    for code in range(6):
        assert f"  {code}  " in result.output


def test_infra_commands_are_present() -> None:
    infra = cli.commands["infra"]
    assert isinstance(infra, click.Group)
    assert {"fetch", "up", "status", "down", "topics", "clickhouse"} <= set(infra.commands)


def test_bad_arguments_exit_3() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "infra", "up", "--brokers", "2"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 3
    assert "--brokers" in proc.stderr


@pytest.mark.parametrize("script", ["harness", "feed-sim", "ingest"])
def test_console_scripts_answer_help(script: str) -> None:
    from shutil import which

    exe = which(script, path=str(__import__("pathlib").Path(sys.executable).parent))
    assert exe is not None, f"console script {script} is not installed"
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "Usage:" in proc.stdout
