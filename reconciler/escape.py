"""Text from outside (backend replies, file names, YAML keys) printed safely: control characters and line
breaks are shown escaped, so no value can forge a ``FILE:LINE:COL:`` line or move the terminal's cursor."""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: str) -> str:
    """``text`` on one line, every control character written as an escape (``\\n``, ``\\x1b``)."""
    return _UNSAFE.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                                            else f"\\u{ord(m.group()):04x}"), text)
