"""Text index conversions. Every server-side index into a pycrdt ``Text`` goes through here.

Three units count the same text differently:

- code points: Python ``str`` indices;
- UTF-8 bytes: what pycrdt 0.14's ``Text.insert``/``del``/events use;
- UTF-16 code units: what Yjs, CodeMirror and browsers use, and what Yjs clocks count.

An index that lands inside a multi-byte character makes pycrdt emit an update
that other replicas can never integrate: silent, permanent divergence
(pycrdt#379). So conversions here refuse such indices instead of rounding.
"""

from __future__ import annotations

from collections.abc import Callable


class OffsetError(ValueError):
    """An index that is out of range or falls inside a character."""


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _check_codepoint(text: str, index: int) -> None:
    if not 0 <= index <= len(text):
        raise OffsetError(f"index {index} outside 0..{len(text)}")


def codepoint_to_utf8(text: str, index: int) -> int:
    """A Python string index -> the pycrdt ``Text`` index of the same position."""
    _check_codepoint(text, index)
    return utf8_len(text[:index])


def codepoint_to_utf16(text: str, index: int) -> int:
    """A Python string index -> the Yjs/CodeMirror index of the same position."""
    _check_codepoint(text, index)
    return utf16_len(text[:index])


def _to_codepoint(text: str, index: int, width: Callable[[str], int]) -> int:
    if index < 0:
        raise OffsetError(f"negative index {index}")
    units = 0
    for i, char in enumerate(text):
        if units == index:
            return i
        units += width(char)
        if units > index:
            raise OffsetError(f"index {index} falls inside the character at {i}")
    if units == index:
        return len(text)
    raise OffsetError(f"index {index} past the end ({units})")


def _utf8_width(char: str) -> int:
    cp = ord(char)
    return 1 if cp < 0x80 else 2 if cp < 0x800 else 3 if cp < 0x10000 else 4


def _utf16_width(char: str) -> int:
    return 2 if ord(char) >= 0x10000 else 1


def utf8_to_codepoint(text: str, index: int) -> int:
    """A pycrdt ``Text`` index -> the Python string index. Refuses mid-character indices."""
    return _to_codepoint(text, index, _utf8_width)


def utf16_to_codepoint(text: str, index: int) -> int:
    """A Yjs/CodeMirror index -> the Python string index. Refuses mid-surrogate indices."""
    return _to_codepoint(text, index, _utf16_width)


def utf16_to_utf8(text: str, index: int) -> int:
    """A browser index -> a pycrdt index (for server-side edits at a client's position)."""
    return codepoint_to_utf8(text, utf16_to_codepoint(text, index))


def utf8_to_utf16(text: str, index: int) -> int:
    """A pycrdt index (for example from a ``TextEvent`` delta) -> a browser index."""
    return codepoint_to_utf16(text, utf8_to_codepoint(text, index))
