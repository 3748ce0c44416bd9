"""Ruby regular expressions as Fluentd configs write them (``/^\\w\\d{4}/``) -> Python ``re``.

Only the differences that occur in log parsing configs are translated: the ``/.../flags``
delimiters, named groups ``(?<name>`` -> ``(?P<name>``, ``\\h`` (hex digit) and ``\\z``;
Ruby's ``m`` flag is Python's DOTALL. The result is compiled to prove it works, else None.
"""

from __future__ import annotations

import re

_FLAGS = {"i": "i", "m": "s", "x": "x"}


def ruby_regex(text: str) -> str | None:
    """The Python equivalent of ``text`` (with or without ``/`` delimiters), or None."""
    text = text.strip()
    flags = ""
    if text.startswith("/") and text.rfind("/") > 0:
        end = text.rfind("/")
        modifiers = text[end + 1:]
        if any(m not in _FLAGS for m in modifiers):
            return None
        flags = "".join(sorted({_FLAGS[m] for m in modifiers}))
        text = text[1:end]
    pattern = re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", text)
    pattern = pattern.replace(r"\h", "[0-9a-fA-F]").replace(r"\z", r"\Z")
    if flags:
        pattern = f"(?{flags}){pattern}"
    try:
        re.compile(pattern)
    except re.error:
        return None
    return pattern
