"""Match a room's ``meta.language`` to a Judge0 language id.

Judge0 ids differ between deployments (1.13.1 has Python 3.8.1 = 71; newer
hosted ones use 113 for Python 3.11), so nothing is hard-coded: ids come from
``GET /languages`` and are matched by name. A Judge0 name is ``"Python (3.8.1)"``,
``"C++ (GCC 9.2.0)"``, ``"JavaScript (Node.js 12.14.0)"``: the part before the
parenthesis must equal the room language's Judge0 name exactly (so ``Java``
never matches ``JavaScript``), and among several the newest version wins
(``Python (3.8.1)`` over ``Python (2.7.17)``, ``C (GCC 9.2.0)`` over ``C (GCC 7.4.0)``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from runner.judge0 import Language

# meta.language (the web client's ids, plus common aliases) -> Judge0's base name.
JUDGE0_NAMES: dict[str, str] = {
    "python": "Python",
    "py": "Python",
    "python3": "Python",
    "javascript": "JavaScript",
    "js": "JavaScript",
    "typescript": "TypeScript",
    "ts": "TypeScript",
    "java": "Java",
    "c": "C",
    "cpp": "C++",
    "c++": "C++",
    "go": "Go",
    "golang": "Go",
    "rust": "Rust",
}
SUPPORTED = ("python", "javascript", "typescript", "java", "c", "cpp", "go", "rust")

_NAME = re.compile(r"^\s*(?P<base>[^(]+?)\s*(?:\((?P<detail>[^)]*)\))?\s*$")


class UnsupportedLanguage(Exception):
    def __init__(self, language: str, reason: str) -> None:
        super().__init__(reason)
        self.language = language
        self.reason = reason


def base_name(judge0_name: str) -> str:
    match = _NAME.match(judge0_name)
    return match.group("base") if match else judge0_name.strip()


def _version(judge0_name: str) -> tuple[int, ...]:
    match = _NAME.match(judge0_name)
    detail = (match.group("detail") or "") if match else ""
    found = re.search(r"\d+(?:\.\d+)*", detail)
    return tuple(int(p) for p in found.group(0).split(".")) if found else ()


def known(language: str) -> bool:
    return language.strip().lower() in JUDGE0_NAMES


def resolve(language: str, available: Iterable[Language]) -> Language:
    """The Judge0 language for ``language``, or ``UnsupportedLanguage``."""
    key = language.strip().lower()
    wanted = JUDGE0_NAMES.get(key)
    if wanted is None:
        raise UnsupportedLanguage(
            language,
            f"the runner does not support {language!r} (supported: {', '.join(SUPPORTED)})",
        )
    candidates = [lang for lang in available if base_name(lang.name) == wanted]
    if not candidates:
        raise UnsupportedLanguage(language, f"this Judge0 offers no {wanted} compiler or runtime")
    return max(candidates, key=lambda lang: (_version(lang.name), lang.id))
