"""Text shown to other people (names, bios): what it must not hold.

Controls, line and paragraph separators, and invisible format marks (those that reorder the text
around them make a name read differently from what it is: `\u202e` shows "Cafe" backwards), but
for the joiners some scripts and emoji are written with, and, where a field allows lines, the
line feed.
"""

from __future__ import annotations

import unicodedata

from rest_framework import serializers

_NOT_SHOWN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_JOINERS = frozenset({"\u200c", "\u200d"})


def plain_text(value: str, *, lines: bool = False) -> bool:
    allowed = _JOINERS | {"\n"} if lines else _JOINERS
    return not any(unicodedata.category(ch) in _NOT_SHOWN and ch not in allowed for ch in value)


class PlainTextField(serializers.CharField):
    """A CharField refusing control and reordering marks (a line feed too, unless `lines`),
    checked after the field's own checks (length, NUL)."""

    def __init__(self, *, lines: bool = False, message: str = "", **kwargs):
        super().__init__(**kwargs)
        message = message or "Cannot hold control or reordering marks."

        def shown_plainly(value: str) -> None:
            if not plain_text(value, lines=lines):
                raise serializers.ValidationError(message)

        self.validators.append(shown_plainly)
