"""Workspace file paths: one normal form, and the rules a path must keep.

A path names a file in a room's workspace (``files`` root, and ``meta.entry`` for the
file that lives in ``code``). Every layer (the peer-update check, REST, the runner's zip,
the browser) must agree on what is one path, so there is one normal form: NFC, ``/``
separated, relative, no empty, ``.`` or ``..`` segment, at most ``MAX_BYTES`` bytes of
UTF-8 and ``MAX_DEPTH`` segments.
"""

from __future__ import annotations

import posixpath
import unicodedata

MAX_BYTES = 255
MAX_DEPTH = 8

# Extension -> the room language id it is edited and run as (runner/languages.py ids).
EXTENSIONS = {
    ".py": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".ts": "typescript",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cpp": "cpp",
    ".cc": "cpp",
    ".hpp": "cpp",
    ".go": "go",
    ".rs": "rust",
}
# A room's language -> the entry file's path when ``meta.entry`` is not set (rooms made
# before workspaces): Java needs its public class's name.
DEFAULT_ENTRY = {
    "python": "main.py",
    "javascript": "main.js",
    "typescript": "main.ts",
    "java": "Main.java",
    "c": "main.c",
    "cpp": "main.cpp",
    "go": "main.go",
    "rust": "main.rs",
}


class PathError(ValueError):
    """A path that breaks a rule; ``rule`` says which, in words a person reads."""

    def __init__(self, path: str, rule: str) -> None:
        super().__init__(f"{path!r}: {rule}")
        self.path = path
        self.rule = rule


def normalize(path: str) -> str:
    """The normal form of ``path``; raises PathError naming the rule it breaks."""
    if not isinstance(path, str) or not path:
        raise PathError(str(path), "a path must not be empty")
    nfc = unicodedata.normalize("NFC", path)
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in nfc):
        raise PathError(path, "a path must not contain control characters")
    if "\\" in nfc:
        raise PathError(path, "use / to separate folders, not \\")
    if nfc.startswith("/"):
        raise PathError(path, "a path must be relative (no leading /)")
    segments = nfc.split("/")
    if any(s == "" for s in segments):
        raise PathError(path, "a path must not have empty segments (// or a trailing /)")
    if any(s in (".", "..") for s in segments):
        raise PathError(path, "a path must not contain . or .. segments")
    if any(s != s.strip() for s in segments):
        raise PathError(path, "a path segment must not start or end with spaces")
    if len(segments) > MAX_DEPTH:
        raise PathError(path, f"a path may be at most {MAX_DEPTH} levels deep")
    if len(nfc.encode("utf-8")) > MAX_BYTES:
        raise PathError(path, f"a path may be at most {MAX_BYTES} bytes of UTF-8")
    return nfc


def is_normal(path: object) -> bool:
    try:
        return isinstance(path, str) and normalize(path) == path
    except PathError:
        return False


def language_for(path: str, default: str) -> str:
    """The language a file is edited and run as: by its extension, else the room's."""
    return EXTENSIONS.get(posixpath.splitext(path)[1].lower(), default)


def default_entry(language: str | None) -> str:
    return DEFAULT_ENTRY.get(language or "python", "main.py")
