"""The README's walk-through, run as written against a real server: its Python blocks are
executed and every line of its console output is checked."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import Server

README = Path(__file__).parent.parent / "README.md"
pytestmark = pytest.mark.slow


def walkthrough() -> str:
    text = README.read_text()
    start = text.index("## Five-minute walk-through")
    return text[start : text.index("\n## ", start + 1)]


def blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def console_steps(block: str) -> list[tuple[str, list[str]]]:
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def test_walkthrough_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    section = walkthrough()
    url = f"sqlite:///{tmp_path / 'walkthrough.db'}"
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "vodwatch",
            "tenant",
            "create",
            "demo",
            "--json",
            "--database-url",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    tenant = json.loads(created.stdout)
    server = Server(url, tmp_path).start()
    try:
        env = {
            "VODWATCH_URL": server.url,
            "VODWATCH_AUTHKEY": tenant["authkey"],
            "VODWATCH_SECRET": tenant["secret"],
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        python_blocks = blocks(section, "python")
        assert python_blocks, "the walk-through lost its Python example"
        for code in python_blocks:
            exec(compile(code, "README.md", "exec"), {})

        steps = [step for block in blocks(section, "console") for step in console_steps(block)]
        assert steps, "the walk-through lost its console example"
        shell_env = {
            **os.environ,
            **env,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
        for command, expected in steps:
            result = subprocess.run(
                ["bash", "-o", "pipefail", "-c", command],
                env=shell_env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
            )
            assert result.returncode == 0, result.stderr
            assert result.stdout.rstrip("\n").splitlines() == expected, command
    finally:
        server.stop()
