"""Hashtags and mentions in captions and comments."""

from __future__ import annotations

import re
import unicodedata

# `#` then word characters (unicode letters, digits, `_`), not inside another word or tag.
HASHTAG_RE = re.compile(r"(?<![\w#&])#(\w{1,100})")
MENTION_RE = re.compile(r"(?<![\w@])@([A-Za-z0-9._]{1,30})")


def hashtags_in(text: str) -> list[str]:
    """Distinct hashtags in order of appearance, normalised (NFKC, case-folded)."""
    seen: dict[str, None] = {}
    for match in HASHTAG_RE.finditer(text):
        tag = unicodedata.normalize("NFKC", match.group(1)).casefold()
        # "#1" is a number, not a tag; normalising can lengthen a tag past what is stored.
        if any(ch.isalpha() for ch in tag) and len(tag) <= 100:
            seen.setdefault(tag, None)
    return list(seen)


def mentions_in(text: str) -> list[str]:
    """Distinct mentioned usernames in order of appearance, lower-cased."""
    seen: dict[str, None] = {}
    for match in MENTION_RE.finditer(text):
        seen.setdefault(match.group(1).lower().rstrip("."), None)
    return [name for name in seen if name]
