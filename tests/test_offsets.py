"""Property tests for ``crdt.offsets``: code points <-> UTF-8 bytes <-> UTF-16 units.

The ground truth is independent of the module under test: Python's own encoders
for the unit counts, and a real pycrdt ``Text`` (whose indices are UTF-8 bytes in
0.14) for what an index means to the CRDT.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pycrdt import Doc, Text

from crdt.offsets import (
    OffsetError,
    codepoint_to_utf8,
    codepoint_to_utf16,
    utf8_len,
    utf8_to_codepoint,
    utf8_to_utf16,
    utf16_len,
    utf16_to_codepoint,
    utf16_to_utf8,
)

# Every UTF-8 width (1..4 bytes) and both UTF-16 widths, in roughly equal measure.
# Lone surrogates are excluded: they cannot be encoded, and no Text can hold them.
chars = st.one_of(
    st.characters(max_codepoint=0x7F),
    st.characters(min_codepoint=0x80, max_codepoint=0x7FF),
    st.characters(min_codepoint=0x800, max_codepoint=0xFFFF, exclude_categories=["Cs"]),
    st.characters(min_codepoint=0x10000),
)
texts = st.text(alphabet=chars, max_size=40)
small_texts = st.text(alphabet=chars, min_size=1, max_size=6)


@st.composite
def text_and_index(draw: st.DrawFn, source: st.SearchStrategy[str] = texts) -> tuple[str, int]:
    s = draw(source)
    return s, draw(st.integers(min_value=0, max_value=len(s)))


def utf8_boundaries(s: str) -> dict[int, int]:
    """Byte offset of every character boundary -> its code point index."""
    return {len(s[:i].encode("utf-8")): i for i in range(len(s) + 1)}


def utf16_boundaries(s: str) -> dict[int, int]:
    return {len(s[:i].encode("utf-16-le")) // 2: i for i in range(len(s) + 1)}


def text_doc(s: str) -> tuple[Doc[Any], Text]:
    doc: Doc[Any] = Doc()
    text = doc.get("code", type=Text)
    text += s
    return doc, text


# --- lengths -------------------------------------------------------------------


@given(texts)
def test_lengths_match_python_encoders_and_pycrdt(s: str) -> None:
    assert utf8_len(s) == len(s.encode("utf-8"))
    assert utf16_len(s) == len(s.encode("utf-16-le")) // 2
    _, text = text_doc(s)
    assert len(text) == utf8_len(s)  # pycrdt 0.14 counts bytes


# --- round trips ---------------------------------------------------------------


@given(text_and_index())
def test_codepoint_round_trips_through_utf8_and_utf16(case: tuple[str, int]) -> None:
    s, i = case
    b = codepoint_to_utf8(s, i)
    u = codepoint_to_utf16(s, i)
    assert utf8_to_codepoint(s, b) == i
    assert utf16_to_codepoint(s, u) == i
    assert utf16_to_utf8(s, u) == b
    assert utf8_to_utf16(s, b) == u


@given(texts)
def test_valid_utf8_indices_are_exactly_the_character_boundaries(s: str) -> None:
    boundaries = utf8_boundaries(s)
    for b in range(-2, utf8_len(s) + 3):
        if b in boundaries:
            assert utf8_to_codepoint(s, b) == boundaries[b]
            assert utf8_to_utf16(s, b) == utf16_len(s[: boundaries[b]])
        else:
            with pytest.raises(OffsetError):
                utf8_to_codepoint(s, b)
            with pytest.raises(OffsetError):
                utf8_to_utf16(s, b)


@given(texts)
def test_valid_utf16_indices_are_exactly_the_character_boundaries(s: str) -> None:
    boundaries = utf16_boundaries(s)
    for u in range(-2, utf16_len(s) + 3):
        if u in boundaries:
            assert utf16_to_codepoint(s, u) == boundaries[u]
            assert utf16_to_utf8(s, u) == utf8_len(s[: boundaries[u]])
        else:
            with pytest.raises(OffsetError):
                utf16_to_codepoint(s, u)
            with pytest.raises(OffsetError):
                utf16_to_utf8(s, u)


# --- agreement with pycrdt and with UTF-16 -------------------------------------


@given(text_and_index(), small_texts)
def test_codepoint_to_utf8_is_the_pycrdt_insert_index(case: tuple[str, int], x: str) -> None:
    s, i = case
    doc, text = text_doc(s)
    text.insert(codepoint_to_utf8(s, i), x)
    assert str(text) == s[:i] + x + s[i:]
    # The emitted update must also be integrable by a fresh replica: a mid-character
    # index would produce an update other peers hold pending forever.
    replica: Doc[Any] = Doc()
    replica.apply_update(doc.get_update())
    assert str(replica.get("code", type=Text)) == s[:i] + x + s[i:]


@given(text_and_index(), st.data())
def test_codepoint_to_utf8_is_the_pycrdt_delete_range(
    case: tuple[str, int], data: st.DataObject
) -> None:
    s, i = case
    j = data.draw(st.integers(min_value=i, max_value=len(s)))
    _, text = text_doc(s)
    del text[codepoint_to_utf8(s, i) : codepoint_to_utf8(s, j)]
    assert str(text) == s[:i] + s[j:]


@given(text_and_index())
def test_utf16_index_counts_utf16_code_units(case: tuple[str, int]) -> None:
    s, i = case
    assert codepoint_to_utf16(s, i) == len(s[:i].encode("utf-16-le")) // 2
    assert codepoint_to_utf16(s, len(s)) == len(s.encode("utf-16-le")) // 2


@given(text_and_index())
def test_utf16_to_utf8_gives_the_pycrdt_index_of_a_browser_position(
    case: tuple[str, int],
) -> None:
    s, i = case
    browser_index = len(s[:i].encode("utf-16-le")) // 2
    _, text = text_doc(s)
    text.insert(utf16_to_utf8(s, browser_index), "|")
    assert str(text) == s[:i] + "|" + s[i:]


# --- refusals ------------------------------------------------------------------


@given(texts)
def test_mid_character_indices_raise(s: str) -> None:
    pos8 = pos16 = 0
    for char in s:
        w8 = len(char.encode("utf-8"))
        w16 = len(char.encode("utf-16-le")) // 2
        for inside in range(pos8 + 1, pos8 + w8):
            with pytest.raises(OffsetError, match="inside"):
                utf8_to_codepoint(s, inside)
        for inside in range(pos16 + 1, pos16 + w16):
            with pytest.raises(OffsetError, match="inside"):
                utf16_to_codepoint(s, inside)
        pos8 += w8
        pos16 += w16


@given(texts, st.integers(min_value=1, max_value=10**6))
def test_out_of_range_indices_raise(s: str, k: int) -> None:
    for fn in (codepoint_to_utf8, codepoint_to_utf16):
        with pytest.raises(OffsetError):
            fn(s, -k)
        with pytest.raises(OffsetError):
            fn(s, len(s) + k)
    for fn, size in (
        (utf8_to_codepoint, utf8_len(s)),
        (utf8_to_utf16, utf8_len(s)),
        (utf16_to_codepoint, utf16_len(s)),
        (utf16_to_utf8, utf16_len(s)),
    ):
        with pytest.raises(OffsetError):
            fn(s, -k)
        with pytest.raises(OffsetError):
            fn(s, size + k)


def test_offset_error_is_a_value_error() -> None:
    assert issubclass(OffsetError, ValueError)


def test_known_values_for_an_emoji() -> None:
    s = "a😀b"  # code points 3, UTF-8 bytes 6, UTF-16 units 4
    assert [codepoint_to_utf8(s, i) for i in range(4)] == [0, 1, 5, 6]
    assert [codepoint_to_utf16(s, i) for i in range(4)] == [0, 1, 3, 4]
    assert utf8_to_codepoint(s, 5) == 2
    assert utf16_to_codepoint(s, 3) == 2
    assert utf16_to_utf8(s, 3) == 5
    assert utf8_to_utf16(s, 5) == 3
    for bad in (2, 3, 4):
        with pytest.raises(OffsetError):
            utf8_to_codepoint(s, bad)
    with pytest.raises(OffsetError):
        utf16_to_codepoint(s, 2)


def test_empty_text() -> None:
    for fn in (
        codepoint_to_utf8,
        codepoint_to_utf16,
        utf8_to_codepoint,
        utf16_to_codepoint,
        utf8_to_utf16,
        utf16_to_utf8,
    ):
        assert fn("", 0) == 0
        with pytest.raises(OffsetError):
            fn("", 1)
        with pytest.raises(OffsetError):
            fn("", -1)
