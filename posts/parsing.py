"""Hashtags and mentions in captions and comments."""

from __future__ import annotations

import re
import unicodedata

TAG_MAX = 100
# `@` then a username's characters, not inside another word or mention, and all of the name:
# a longer run names no one (not its first 30 characters' owner). A name never ends with a
# dot, so dots after one end the sentence, not the name.
MENTION_RE = re.compile(r"(?<![\w@])@([A-Za-z0-9._]{1,30})(?![A-Za-z0-9_]|\.+[A-Za-z0-9_])")


def _tag_start(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _tag_character(ch: str) -> bool:
    """A letter or digit of any script, `_`, or a combining mark (the vowel signs of Indic
    scripts, an accent typed apart), which a regular expression's word characters leave out;
    not the variation selectors that follow an emoji (`❤️#love` is a tag), nor enclosing marks
    (a keycap)."""
    if _tag_start(ch):
        return True
    return unicodedata.category(ch) in ("Mn", "Mc") and not (
        "\ufe00" <= ch <= "\ufe0f" or "\U000e0100" <= ch <= "\U000e01ef"
    )


def hashtags_in(text: str) -> list[str]:
    """Distinct hashtags in order of appearance, normalised (`hashtag_normalize`): `#` then
    tag characters, not inside another word or tag (nor after `&`, as in `&#39;`); a run longer
    than TAG_MAX is no tag (not its first TAG_MAX characters)."""
    seen: dict[str, None] = {}
    start = text.find("#")
    while start != -1:
        end = start + 1
        while end < len(text) and end - start <= TAG_MAX and _tag_character(text[end]):
            end += 1
        before = text[start - 1] if start else " "
        whole = end == len(text) or not _tag_character(text[end])
        first = text[start + 1] if end > start + 1 else ""
        if _tag_start(first) and whole and not (_tag_character(before) or before in "#&"):
            tag = hashtag_normalize(text[start + 1 : end])
            if tag is not None:
                seen.setdefault(tag, None)
        start = text.find("#", start + 1)
    return list(seen)


def hashtag_normalize(name: str) -> str | None:
    """A hashtag as stored (NFKC, case-folded), or None if `name` is none: given as typed (word
    characters) or as stored, since folding can give a tag other characters (`İ` becomes `i`
    and a combining dot; `½` becomes 1, a fraction slash and 2). "#1" is a number, not a tag;
    normalising can lengthen a tag past what is stored."""
    tag = unicodedata.normalize("NFKC", name).casefold()
    if not (0 < len(tag) <= TAG_MAX and any(ch.isalpha() for ch in tag)):
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
