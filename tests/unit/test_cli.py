"""``shipper --help`` as a user sees it (a real process)."""

from __future__ import annotations

import subprocess
import sys

from shipper.cli import build_parser


def test_help_is_whole_sentences_and_lists_every_command() -> None:
    done = subprocess.run([sys.executable, "-m", "shipper.cli", "--help"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "``" not in out and "Command line:" not in out  # no docstring markup or fragment
    description = out.split("\n\n")[1]
    assert description.startswith("A Kubernetes log shipper") and description.endswith(".")
    assert all(len(line) <= 100 for line in out.splitlines())
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in commands:
        assert f"    {name}" in out, name
    assert "shipper COMMAND --help" in out
