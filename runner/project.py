"""A workspace of several files as one Judge0 "Multi-file program" submission.

Judge0 CE 1.13.1 (``app/jobs/isolate_job.rb``) runs a multi-file program (the language
named ``Multi-file program``, 89 there) like this: it unzips ``additional_files`` into
the sandbox's working directory, runs ``/bin/bash compile`` if the zip has a ``compile``
file (stderr into ``compile_output``; a non-zero exit is status 6, Compilation Error,
and nothing runs), then ``/bin/bash run`` with the submission's stdin and limits. The
sandbox's ``PATH`` is only ``/usr/local/bin:/usr/bin:/bin`` and friends: the toolchains
live under ``/usr/local/<tool>-<version>/``. So the scripts name each tool by the path
this Judge0 itself uses for the entry file's language, read from ``GET /languages/{id}``
(its ``compile_cmd`` and ``run_cmd``), never a path hard-coded here.

What runs, by the entry file's language (every path shell-quoted):

| language | compile | run |
|---|---|---|
| python | - | ``python3 <entry>`` |
| javascript | - | ``node <entry>`` |
| typescript | ``tsc --outDir .tsout --rootDir .`` every ``.ts`` | ``node .tsout/<entry>.js`` |
| c | ``gcc -I . -o a.out`` every ``.c``, ``-lm`` | ``./a.out`` |
| cpp | ``g++ -I . -o a.out`` every ``.cpp``/``.cc`` | ``./a.out`` |
| java | ``javac -d .classes`` every ``.java`` | ``java -cp .classes <package>.<Class>`` |
| go | ``go mod init`` (without a ``go.mod``), ``go build -o main <entry's folder>`` | ``./main`` |
| rust | refused: needs cargo, which Judge0 CE does not have | |
"""

from __future__ import annotations

import base64
import io
import posixpath
import re
import shlex
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass

from crdt import paths
from runner.judge0 import Language, LanguageDetail
from runner.languages import JUDGE0_NAMES, UnsupportedLanguage

MULTI_FILE = "Multi-file program"
SCRIPTS = ("run", "compile")  # the names Judge0 looks for at the zip's top level
# The languages a multi-file program can be written in (by the entry file's language).
PROJECT_LANGUAGES = ("python", "javascript", "typescript", "c", "cpp", "java", "go")
RUST_REFUSAL = (
    "a Rust program of several files needs cargo, which Judge0 CE does not have: "
    "keep the program in one file (main.rs) to run it"
)
SOURCES = {
    "c": (".c",),
    "cpp": (".cpp", ".cc"),
    "java": (".java",),
    "typescript": (".ts",),
}
_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_$][\w$]*(?:\s*\.\s*[A-Za-z_$][\w$]*)*)\s*;", re.M)
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)  # every entry: the same zip for the same workspace


class ProjectRefused(Exception):
    """A workspace the runner cannot run; ``field`` names what to change."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class Project:
    """A checked workspace: its files (path -> text), the entry path, and the entry
    file's language (a room language id, ``crdt.paths.EXTENSIONS``)."""

    files: Mapping[str, str]
    entry: str
    language: str

    @property
    def paths(self) -> list[str]:
        return sorted(self.files)


def plan(files: Mapping[str, str], entry: str, language: str) -> Project:
    """Check that ``files`` can run as a multi-file program from ``entry`` in ``language``.
    Raises ``ProjectRefused`` (a 422 for the run request)."""
    if entry not in files:
        raise ProjectRefused(f"the entry {entry!r} is not a file of the workspace", "entry")
    key = language.strip().lower()
    canonical = {"py": "python", "python3": "python", "js": "javascript", "ts": "typescript",
                 "c++": "cpp", "golang": "go"}.get(key, key)  # fmt: skip
    if canonical == "rust":
        raise ProjectRefused(RUST_REFUSAL, "entry")
    if canonical not in PROJECT_LANGUAGES:
        raise ProjectRefused(
            f"the runner cannot run a program of several files in {language!r} "
            f"(it can in: {', '.join(PROJECT_LANGUAGES)})",
            "entry",
        )
    for name in SCRIPTS:
        if name in files:
            raise ProjectRefused(
                f"a file named {name!r} at the top of the workspace clashes with Judge0's "
                f"{name} script: rename it",
                "files",
            )
    if not files[entry].strip():
        raise ProjectRefused(f"the entry {entry!r} is empty: there is no code to run", "code")
    return Project(dict(files), entry, canonical)


def multi_file_language(available: list[Language]) -> Language:
    """Judge0's "Multi-file program", by name (its id differs between deployments)."""
    for language in available:
        if language.name.strip() == MULTI_FILE:
            return language
    raise UnsupportedLanguage(
        MULTI_FILE, "this Judge0 offers no Multi-file program: only one file can run"
    )


def judge0_name(language: str) -> str:
    """The Judge0 base name whose toolchain the entry file's language uses."""
    return JUDGE0_NAMES[language]


@dataclass(frozen=True, slots=True)
class _Command:
    env: list[str]  # NAME=value assignments before the tool
    tool: str  # the tool's path, as this Judge0 runs it


def _command(cmd: str | None, what: str) -> _Command:
    if not cmd:
        raise UnsupportedLanguage(what, f"this Judge0 gives no {what} command")
    try:
        words = shlex.split(cmd)
    except ValueError as exc:
        raise UnsupportedLanguage(what, f"this Judge0's {what} command is unreadable") from exc
    env: list[str] = []
    for word in words:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", word):
            env.append(word)
        else:
            return _Command(env, word)
    raise UnsupportedLanguage(what, f"this Judge0's {what} command names no program")


def _q(path: str) -> str:
    return shlex.quote(path)


def _line(command: _Command, *args: str) -> str:
    env = [f"{k}={_q(v)}" for k, v in (a.split("=", 1) for a in command.env)]
    return " ".join([*env, _q(command.tool), *args])


def _sources(project: Project) -> list[str]:
    ends = SOURCES[project.language]
    return [p for p in project.paths if posixpath.splitext(p)[1].lower() in ends]


def java_class(path: str, text: str) -> str:
    """The class ``java`` runs: the file's name, in its declared ``package``."""
    stem = posixpath.splitext(posixpath.basename(path))[0]
    found = _PACKAGE.search(text)
    package = re.sub(r"\s+", "", found.group(1)) if found else ""
    return f"{package}.{stem}" if package else stem


def scripts(project: Project, detail: LanguageDetail) -> tuple[str | None, str]:
    """The ``compile`` script (None: nothing to compile) and the ``run`` script, for the
    toolchain ``detail`` (this Judge0's single-file language of the entry's language)."""
    header = "set -e\n"
    lang, entry = project.language, project.entry
    if lang == "python" or lang == "javascript":
        return None, header + _line(_command(detail.run_cmd, "run"), _q(entry)) + "\n"
    if lang in ("c", "cpp"):
        compiler = _command(detail.compile_cmd, "compile")
        files = " ".join(_q(p) for p in _sources(project))
        libm = " -lm" if lang == "c" else ""
        run_env = _command(detail.run_cmd, "run").env
        run = " ".join([*(f"{k}={_q(v)}" for k, v in (a.split("=", 1) for a in run_env)),
                        "./a.out"])  # fmt: skip
        return (
            header + _line(compiler, "-I", ".", "-o", "a.out", files) + libm + "\n",
            header + run + "\n",
        )
    if lang == "java":
        javac = _command(detail.compile_cmd, "compile")
        java = _command(detail.run_cmd, "run")
        files = " ".join(_q(p) for p in _sources(project))
        main = java_class(entry, project.files[entry])
        return (
            header + _line(javac, "-encoding", "UTF-8", "-d", ".classes", files) + "\n",
            header + _line(java, "-cp", ".classes", _q(main)) + "\n",
        )
    if lang == "typescript":
        tsc = _command(detail.compile_cmd, "compile")
        node = _command(detail.run_cmd, "run")
        files = " ".join(_q(p) for p in _sources(project))
        built = ".tsout/" + posixpath.splitext(entry)[0] + ".js"
        return (
            header + _line(tsc, "--outDir", ".tsout", "--rootDir", ".", files) + "\n",
            header + _line(node, _q(built)) + "\n",
        )
    if lang == "go":
        go = _command(detail.compile_cmd, "compile")
        folder = posixpath.dirname(entry)
        target = "./" + folder if folder else "."
        tool = _line(go)
        compile_ = (
            header
            + "export GOPROXY=off GOFLAGS=-mod=mod\n"
            + f"[ -f go.mod ] || {tool} mod init workspace >/dev/null 2>&1\n"
            + _line(go, "build", "-o", "main", _q(target))
            + "\n"
        )
        return compile_, header + "./main\n"
    raise UnsupportedLanguage(lang, f"the runner cannot run {lang!r} as several files")


def archive(project: Project, compile_: str | None, run: str) -> str:
    """Base64 of the zip Judge0 unzips into the sandbox: the files and the scripts."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        named = [(path, project.files[path]) for path in project.paths]
        named.append(("run", run))
        if compile_ is not None:
            named.append(("compile", compile_))
        for name, text in named:
            info = zipfile.ZipInfo(name, _ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, text.encode("utf-8"))
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def language_of(entry: str, room_language: str) -> str:
    """The entry file's language: by its extension, else the room's."""
    return paths.language_for(entry, room_language)
