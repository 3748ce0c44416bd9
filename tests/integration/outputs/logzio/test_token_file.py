"""The token file: read at first use, re-read when it changes, last good token kept."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from outputs.logzio.token import TokenSource
from shipper.errors import OutputCredentialsError


def test_the_token_is_read_without_surrounding_whitespace(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("  first-token\n")
    source = TokenSource("lz", token_file=str(path))
    assert source.current() == "first-token"
    assert source.origin == f"token_file {path}"


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first-token")
    source = TokenSource("lz", token_file=str(path))
    assert source.current() == "first-token"
    replacement = tmp_path / "new"
    replacement.write_text("second-token-longer")
    os.replace(replacement, path)  # a new inode, as a Secret update gives
    assert source.current() == "second-token-longer"
    assert source.known == ("first-token", "second-token-longer")


def test_a_file_rewritten_in_place_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("aaaa")
    source = TokenSource("lz", token_file=str(path))
    assert source.current() == "aaaa"
    path.write_text("bbbbbb")
    assert source.current() == "bbbbbb"


def test_an_empty_or_vanished_file_keeps_the_last_good_token(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="outputs.logzio.token")
    path = tmp_path / "token"
    path.write_text("good-token")
    source = TokenSource("lz", token_file=str(path))
    assert source.current() == "good-token"
    path.write_text("\n")
    assert source.current() == "good-token"
    assert source.problem == f"{path} is empty or holds more than one token"
    path.unlink()
    assert source.current() == "good-token"
    assert source.current() == "good-token"
    assert source.problem is not None and "cannot read" in source.problem
    warnings = [r for r in caplog.records if getattr(r, "event", "") ==
                "logzio_token_unreadable"]
    assert len(warnings) == 2  # once per change of the problem, not once per request
    path.write_text("next-token")
    assert source.current() == "next-token"
    assert source.problem is None


def test_without_any_usable_token_the_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("two tokens")
    source = TokenSource("lz", token_file=str(path))
    with pytest.raises(OutputCredentialsError) as info:
        source.current()
    assert str(path) in str(info.value)
    assert "two tokens" not in str(info.value)
