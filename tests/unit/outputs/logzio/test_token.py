"""Redaction of the token, and the token source without a file."""

from __future__ import annotations

import logging

import pytest

from outputs.logzio.token import (
    MASK,
    RedactTokenFilter,
    TokenSource,
    install_log_redaction,
    redact,
)
from shipper.errors import OutputCredentialsError

TOKEN = "tokSECRETvalue1234567890abcdefgh"


def test_redact_masks_known_secrets_and_any_token_query_value() -> None:
    text = f"POST /?token={TOKEN}&type=k8s failed; also saw {TOKEN} and ?Token=other#x"
    clean = redact(text, [TOKEN])
    assert TOKEN not in clean
    assert "other" not in clean
    assert f"token={MASK}&type=k8s" in clean
    assert redact("nothing to hide") == "nothing to hide"


def test_filter_rewrites_records_that_format_a_url_with_a_token() -> None:
    record = logging.LogRecord("urllib3.connectionpool", logging.DEBUG, __file__, 1,
                               '%s "%s %s"', ("https://h:8071", "POST",
                                              f"/?token={TOKEN}&type=k8s"), None)
    assert RedactTokenFilter().filter(record) is True
    assert TOKEN not in record.getMessage()
    assert "token=<hidden>" in record.getMessage()


def test_filter_leaves_other_records_alone() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "n=%d", (3,), None)
    RedactTokenFilter().filter(record)
    assert (record.msg, record.args) == ("n=%d", (3,))


def test_installing_the_filter_twice_adds_it_once() -> None:
    install_log_redaction()
    install_log_redaction()
    filters = logging.getLogger("urllib3.connectionpool").filters
    assert sum(isinstance(f, RedactTokenFilter) for f in filters) == 1


def test_a_token_from_the_config_is_used_as_is() -> None:
    source = TokenSource("lz", token=TOKEN)
    assert source.current() == TOKEN
    assert source.known == (TOKEN,)
    assert source.origin == "token"


def test_exactly_one_source_is_required() -> None:
    with pytest.raises(ValueError):
        TokenSource("lz")
    with pytest.raises(ValueError):
        TokenSource("lz", token=TOKEN, token_file="/x")


def test_an_empty_token_is_a_credentials_error() -> None:
    with pytest.raises(OutputCredentialsError, match=r"no Logz\.io token from token"):
        TokenSource("lz", token="").current()
