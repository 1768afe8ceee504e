"""The workspace's rules, checked on every owner's and editor's update.

A room's files are the entry file (root ``code``, named by ``meta.entry``) and the Texts
of the root Map ``files`` (``crdt.schema``). An update that would leave the workspace
breaking a rule (a key of ``files`` not in ``crdt.paths`` normal form, a value that is
not a Text, more files than ``max_files``, a file or the workspace over its byte limit,
``meta.entry`` not a normal path or naming a key of ``files``) is refused whole, like a
reviewer's write. That includes an update that only deletes: removing ``meta.entry`` (or
``meta.language``, which names the default entry) may put the entry file's path onto a
file of ``files``.

Cost: ``crdt.integrity.UpdateCheck.admit`` already tells, for each new item, its parent.
A keystroke inside a file (parent ``code``, or the item of a Text in ``files``) is
checked against running upper bounds of the file's and the workspace's bytes: an update
of ``n`` bytes grows a text by at most ``n`` bytes of UTF-8, so only when a bound could
pass its limit is the text measured exactly. Only updates that write ``files`` or
``meta`` keys, or whose items' parents are unknown, are tried on a copy of the document
and the copy's whole workspace checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc, Map, Text

from crdt import paths, schema
from crdt.parents import Parent, ParentIndex

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class WorkspaceLimits:
    max_files: int = 200  # the entry file counts
    max_file_bytes: int = 1 * MiB  # UTF-8 bytes of one file
    max_workspace_bytes: int = 8 * MiB  # UTF-8 bytes of all files


class WorkspaceError(ValueError):
    """A workspace that breaks a rule: ``path`` names the file, ``rule`` says which."""

    def __init__(self, path: str, rule: str) -> None:
        super().__init__(f"{path!r}: {rule}")
        self.path = path
        self.rule = rule


def text_bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def check_files(
    entry: str, sizes: Iterable[tuple[str, int]], limits: WorkspaceLimits, raw_entry: bool = True
) -> None:
    """Raise ``WorkspaceError`` unless the workspace ``entry`` + ``sizes`` (path, UTF-8
    bytes; the entry file's among them under ``entry``) keeps every rule."""
    if raw_entry and not paths.is_normal(entry):
        raise WorkspaceError(str(entry), "the entry file's path is not in normal form")
    total = 0
    count = 0
    seen: set[str] = set()
    for path, size in sizes:
        if path in seen:
            raise WorkspaceError(path, "the entry file cannot also be a file of the workspace")
        seen.add(path)
        count += 1
        if count > limits.max_files:
            raise WorkspaceError(path, f"a workspace may hold at most {limits.max_files} files")
        if size > limits.max_file_bytes:
            raise WorkspaceError(
                path, f"a file may be at most {limits.max_file_bytes} bytes of UTF-8"
            )
        total += size
        if total > limits.max_workspace_bytes:
            raise WorkspaceError(
                path,
                f"all files together may be at most {limits.max_workspace_bytes} bytes of UTF-8",
            )


def check_document(doc: Doc[Any], limits: WorkspaceLimits) -> None:
    """Raise ``WorkspaceError`` unless ``doc``'s whole workspace keeps every rule."""
    try:
        files: Map[Any] = schema.files(doc)
        meta: Map[Any] = schema.meta(doc)
        code = schema.code(doc)
    except Exception as exc:  # a root written with another type
        raise WorkspaceError(schema.FILES, "files must be a map and code a text") from exc
    raw = meta.get(schema.ENTRY)
    if raw is None:
        language = meta.get("language")
        entry = paths.default_entry(language if isinstance(language, str) else None)
    elif isinstance(raw, str) and paths.is_normal(raw):
        entry = raw
    else:
        raise WorkspaceError(str(raw), "meta.entry must be a path in normal form")
    sizes = [(entry, text_bytes(str(code)))]
    for path, value in files.items():
        if not paths.is_normal(path):
            rule = "not in normal form"
            try:
                paths.normalize(path)
            except paths.PathError as exc:
                rule = exc.rule
            raise WorkspaceError(path, rule)
        if not isinstance(value, Text):
            raise WorkspaceError(path, "a file must be a text")
        sizes.append((path, text_bytes(str(value))))
    check_files(entry, sizes, limits)


def _fresh_copy(doc: Doc[Any], update: bytes) -> Doc[Any]:
    copy: Doc[Any] = Doc()
    copy.apply_update(doc.get_update())
    copy.apply_update(update)
    return copy


_CODE_KEY = "code"
Items = Iterable[tuple[int, int, int, Parent | None, tuple[int, ...]]]


class WorkspaceRules:
    """One room's rule check, with the running byte bounds that keep keystrokes cheap."""

    __slots__ = ("copies", "_bounds", "_grown", "_limits", "_total")

    def __init__(self, limits: WorkspaceLimits | None = None) -> None:
        self._limits = limits or WorkspaceLimits()
        # Per text (``"code"`` or the id of its item in ``files``): (upper bound of its
        # bytes, ``_grown`` when the bound was set), or None for a Text that is no file.
        self._bounds: dict[str | tuple[int, int], tuple[int, int] | None] = {}
        self._total: int | None = None  # upper bound of the workspace's bytes
        self._grown = 0  # bytes of updates applied by other means (server, other instances)
        self.copies = 0  # updates checked on a copy of the document (tests count them)

    @property
    def limits(self) -> WorkspaceLimits:
        return self._limits

    def reset(self) -> None:
        """Forget every bound (a document rebuilt, or changed as a whole)."""
        self._bounds.clear()
        self._total = None

    def learn(self, update: bytes) -> None:
        """``update`` was applied by other means: every text may have grown by its size."""
        self._grown += len(update)
        if self._total is not None:
            self._total += len(update)

    def check(
        self,
        doc: Doc[Any],
        update: bytes,
        items: Items,
        index: Callable[[], ParentIndex],
        deletes: Iterable[tuple[int, int, int]] = (),
    ) -> None:
        """Raise ``WorkspaceError`` when applying ``update`` (whose new items are
        ``items`` and deleted ranges ``deletes``, from ``UpdateCheck.admit``) would break
        a rule. ``index`` gives the room's parent index (built on first use)."""
        for client, clock, length in deletes:
            # Deleting text or a file only shrinks the workspace; deleting a ``meta`` key
            # (``entry``, or ``language`` that names the default entry) may move the entry
            # file's path onto a file of ``files``.
            for parent in index().parents_in(client, clock, clock + length):
                if parent is not None and parent[0] == schema.META:
                    return self._on_copy(doc, update)
        texts: set[str | tuple[int, int]] = set()
        for _client, _start, _end, parent, _lows in items:
            if parent is None:
                return self._on_copy(doc, update)
            owner, key = parent
            if owner == schema.FILES or owner == schema.META:
                return self._on_copy(doc, update)
            if owner == schema.CODE:
                texts.add(_CODE_KEY)
            elif isinstance(owner, tuple) and key is None:
                texts.add(owner)
        if not texts:
            return None
        grow = len(update)
        for text in texts:
            if not self._fits(doc, text, grow, index):
                return self._on_copy(doc, update)
        if self._total is None or self._total + grow > self._limits.max_workspace_bytes:
            self._total = self._measure_total(doc)
            if self._total + grow > self._limits.max_workspace_bytes:
                return self._on_copy(doc, update)
        self._total += grow
        return None

    def _fits(
        self,
        doc: Doc[Any],
        text: str | tuple[int, int],
        grow: int,
        index: Callable[[], ParentIndex],
    ) -> bool:
        """Can ``text`` grow by ``grow`` bytes within the file limit? Updates its bound."""
        limit = self._limits.max_file_bytes
        if text not in self._bounds:
            self._bounds[text] = self._exact(doc, text, index)
        known = self._bounds[text]
        if known is None:
            return True  # a Text that is no file (inside a comment, say)
        bound = known[0] + self._grown - known[1]
        if bound + grow > limit:
            known = self._bounds[text] = self._exact(doc, text, index)
            if known is None:
                return True
            bound = known[0]
            if bound + grow > limit:
                return False
        self._bounds[text] = (bound + grow, self._grown)
        return True

    def _exact(
        self, doc: Doc[Any], text: str | tuple[int, int], index: Callable[[], ParentIndex]
    ) -> tuple[int, int] | None:
        if text == _CODE_KEY:
            return text_bytes(str(schema.code(doc))), self._grown
        assert isinstance(text, tuple)
        parent = index().parent_of(*text)
        if parent is None or parent[0] != schema.FILES or parent[1] is None:
            return None
        value = schema.files(doc).get(parent[1])
        if not isinstance(value, Text):
            return None
        return text_bytes(str(value)), self._grown

    def _measure_total(self, doc: Doc[Any]) -> int:
        return sum(text_bytes(t) for t in schema.workspace(doc).values())

    def _on_copy(self, doc: Doc[Any], update: bytes) -> None:
        """The slow path: the whole workspace of a copy with ``update`` applied."""
        self.copies += 1
        check_document(_fresh_copy(doc, update), self._limits)
        self.reset()
