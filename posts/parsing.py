"""Hashtags and mentions in captions and comments."""

from __future__ import annotations

import re
import unicodedata

# `#` then word characters (unicode letters, digits, `_`), not inside another word or tag.
HASHTAG_RE = re.compile(r"(?<![\w#&])#(\w{1,100})")
MENTION_RE = re.compile(r"(?<![\w@])@([A-Za-z0-9._]{1,30})")


def hashtags_in(text: str) -> list[str]:
    """Distinct hashtags in order of appearance, normalised (`hashtag_normalize`)."""
    seen: dict[str, None] = {}
    for match in HASHTAG_RE.finditer(text):
        tag = hashtag_normalize(match.group(1))
        if tag is not None:
            seen.setdefault(tag, None)
    return list(seen)


def hashtag_normalize(name: str) -> str | None:
    """A hashtag as stored (NFKC, case-folded), or None if `name` is none: given as typed (word
    characters) or as stored, since folding can give a tag other characters (`İ` becomes `i`
    and a combining dot; `½` becomes 1, a fraction slash and 2). "#1" is a number, not a tag;
    normalising can lengthen a tag past what is stored."""
    tag = unicodedata.normalize("NFKC", name).casefold()
    if not (0 < len(tag) <= 100 and any(ch.isalpha() for ch in tag)):
        return None
    typed = all(  # word characters, decomposed or not ("cafe" + U+0301)
        ch.isalnum() or ch == "_" or unicodedata.category(ch)[0] == "M" for ch in name
    )
    stored = tag == name and not any(unicodedata.category(ch)[0] in "CPZ" for ch in tag)
    return tag if typed or stored else None


def mentions_in(text: str) -> list[str]:
    """Distinct mentioned usernames in order of appearance, lower-cased."""
    seen: dict[str, None] = {}
    for match in MENTION_RE.finditer(text):
        seen.setdefault(match.group(1).lower().rstrip("."), None)
    return [name for name in seen if name]
