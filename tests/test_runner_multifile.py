"""Workspaces of several files run as Judge0 "Multi-file program" submissions.

A real server (``codementor serve``) runs rooms' workspaces on the Judge0 double, which
unzips ``additional_files`` into a box and runs the ``compile`` and ``run`` scripts with
this machine's real toolchains (python3, gcc, g++, javac/java, go, node, tsc), the way
Judge0 CE 1.13.1's ``isolate_job.rb`` does. Results are read from a peer's document.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import zipfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from pycrdt import Text

from crdt import paths, schema
from runner import project
from runner.judge0 import Language, LanguageDetail
from runner.languages import UnsupportedLanguage
from tests.judge0_double import _TSC, MULTI_FILE, Judge0Double, Submission
from tests.serverproc import ROOT, ServerProcess
from tests.support import sign
from tests.test_runner import BASE_ENV, JUDGE0_TOKEN, Api, Peer, peer

pytestmark = pytest.mark.anyio

# Roomier limits than test_runner's: a JVM or a Go build needs more than one CPU second.
ENV = {
    **BASE_ENV,
    "CODEMENTOR_RUNNER_CPU_TIME_SECONDS": "5",
    "CODEMENTOR_RUNNER_WALL_TIME_SECONDS": "15",
    "CODEMENTOR_RUNNER_MEMORY_MB": "256",
    "CODEMENTOR_RUNNER_DEADLINE_SECONDS": "60",
}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Judge0Double]]:
    double = Judge0Double(auth_token=JUDGE0_TOKEN).start()
    try:
        settings = {**ENV, "CODEMENTOR_JUDGE0_URL": double.url}
        with ServerProcess(tmp_path_factory.mktemp("multifile"), settings) as proc:
            yield Api(proc), double
    finally:
        double.stop()


@asynccontextmanager
async def workspace(
    api: Api, language: str, files: dict[str, str], entry: str | None = None
) -> AsyncIterator[tuple[str, Peer]]:
    """A room whose workspace is ``files`` (the first is the entry, ``code``), written by
    its owner over a websocket; the server has it when this yields."""
    room = api.create_room(language=language)
    first, *others = files
    async with peer(api, room) as owner:
        doc = owner.client.doc
        with doc.transaction():
            if entry is not None or first != paths.default_entry(language):
                schema.meta(doc)[schema.ENTRY] = entry or first
            for path in others:
                schema.files(doc)[path] = Text(files[path])
        await owner.set_code(api, room, files[first])
        yield room, owner


def latest(double: Judge0Double) -> Submission:
    return max(double.submissions.values(), key=lambda sub: sub.created_at)


def unzip(sub: Submission) -> dict[str, str]:
    assert sub.additional_files is not None
    with zipfile.ZipFile(io.BytesIO(sub.additional_files)) as zf:
        return {name: zf.read(name).decode() for name in zf.namelist()}


async def ran(
    api: Api, room: str, owner: Peer, stdin: str | None = None, **extra: Any
) -> dict[str, Any]:
    response = api.run(room, sign(room, "owner"), stdin, **extra)
    assert response.status_code == 202, response.text
    return await owner.final(response.json()["run_id"], timeout=60)


# -- end to end ---------------------------------------------------------------------------


async def test_python_files_import_each_other(env: tuple[Api, Judge0Double]) -> None:
    api, double = env
    files = {
        "main.py": "from util import greet\nfrom pkg.shout import loud\n"
        "name = input()\nprint(greet(name))\nprint(loud(name))\n",
        "util.py": "def greet(name):\n    return f'hello {name}'\n",
        "pkg/shout.py": "def loud(name):\n    return name.upper() + '!'\n",
    }
    async with workspace(api, "python", files) as (room, owner):
        record = await ran(api, room, owner, stdin="Ada\n")
    assert record["status"] == "accepted", record
    assert record["stdout"] == "hello Ada\nADA!\n"
    assert record["entry"] == "main.py"
    assert record["file_count"] == 3
    assert record["paths"] == "main.py\npkg/shout.py\nutil.py"
    sub = latest(double)
    assert sub.language_id == MULTI_FILE and sub.source_code == b""
    box = unzip(sub)
    assert set(box) == {"main.py", "util.py", "pkg/shout.py", "run"}
    assert box["run"].strip().endswith(" main.py")
    assert double.count("language", 200) >= 1  # the toolchain came from GET /languages/71


async def test_an_error_in_a_helper_file_names_that_file(env: tuple[Api, Judge0Double]) -> None:
    api, _ = env
    files = {"main.py": "import helper\nhelper.boom()\n", "helper.py": "def boom():\n    1 / 0\n"}
    async with workspace(api, "python", files) as (room, owner):
        record = await ran(api, room, owner)
    assert record["status"] == "runtime_error", record
    assert 'helper.py", line 2' in record["stderr"]
    assert "ZeroDivisionError" in record["stderr"]


async def test_java_classes_in_two_files_and_a_package(env: tuple[Api, Judge0Double]) -> None:
    api, _ = env
    files = {
        "Main.java": "import com.util.Shout;\npublic class Main {\n"
        "  public static void main(String[] a) {\n"
        "    System.out.println(new Greeter().greet(new java.util.Scanner(System.in).next()));\n"
        '    System.out.println(Shout.loud("hi"));\n  }\n}\n',
        "Greeter.java": 'class Greeter {\n  String greet(String n) { return "hello " + n; }\n}\n',
        "com/util/Shout.java": "package com.util;\npublic class Shout {\n"
        "  public static String loud(String s) { return s.toUpperCase(); }\n}\n",
    }
    async with workspace(api, "java", files) as (room, owner):
        record = await ran(api, room, owner, stdin="Ada\n")
    assert record["status"] == "accepted", record
    assert record["stdout"] == "hello Ada\nHI\n"
    assert record["file_count"] == 3


async def test_java_entry_in_a_package_folder(env: tuple[Api, Judge0Double]) -> None:
    api, _ = env
    files = {
        "app/Main.java": "package app;\npublic class Main {\n"
        "  public static void main(String[] a) { System.out.println(Two.x()); }\n}\n",
        "app/Two.java": "package app;\nclass Two { static int x() { return 2; } }\n",
    }
    async with workspace(api, "java", files) as (room, owner):
        record = await ran(api, room, owner)
    assert record["status"] == "accepted", record
    assert record["stdout"] == "2\n"
    assert record["entry"] == "app/Main.java"


async def test_c_two_sources_and_a_header(env: tuple[Api, Judge0Double]) -> None:
    api, _ = env
    files = {
        "main.c": '#include <stdio.h>\n#include "util.h"\n'
        'int main(void) { int n; scanf("%d", &n); printf("%d\\n", twice(n)); return 0; }\n',
        "util.c": '#include "util.h"\nint twice(int n) { return 2 * n; }\n',
        "util.h": "int twice(int n);\n",
    }
    async with workspace(api, "c", files) as (room, owner):
        record = await ran(api, room, owner, stdin="21\n")
    assert record["status"] == "accepted", record
    assert record["stdout"] == "42\n"
    assert record["file_count"] == 3


async def test_cpp_two_sources(env: tuple[Api, Judge0Double]) -> None:
    api, _ = env
    files = {
        "main.cpp": '#include <iostream>\n#include "lib/sq.hpp"\n'
        "int main() { std::cout << sq(7) << std::endl; }\n",
        "lib/sq.hpp": "int sq(int);\n",
        "lib/sq.cpp": '#include "sq.hpp"\nint sq(int x) { return x * x; }\n',
    }
    async with workspace(api, "cpp", files) as (room, owner):
        record = await ran(api, room, owner)
    assert record["status"] == "accepted", record
    assert record["stdout"] == "49\n"


async def test_a_compile_error_names_its_file(env: tuple[Api, Judge0Double]) -> None:
    api, _ = env
    files = {
        "main.c": '#include "util.h"\nint main(void) { return twice(1) - 2; }\n',
        "util.c": '#include "util.h"\nint twice(int n) { return 2 * n }\n',  # no ;
        "util.h": "int twice(int n);\n",
    }
    async with workspace(api, "c", files) as (room, owner):
        record = await ran(api, room, owner)
    assert record["status"] == "compile_error", record
    assert "util.c:2" in record["compile_output"]
    assert record["stdout"] == ""


@pytest.mark.skipif(shutil.which("go") is None, reason="no go toolchain on this machine")
async def test_go_files_of_one_package(env: tuple[Api, Judge0Double]) -> None:
    api, _ = env
    files = {
        "main.go": 'package main\n\nimport (\n\t"fmt"\n\t"workspace/util"\n)\n\n'
        "func main() { fmt.Println(double(21), util.Neg(1)) }\n",
        "double.go": "package main\n\nfunc double(n int) int { return 2 * n }\n",
        "util/neg.go": "package util\n\nfunc Neg(n int) int { return -n }\n",
    }
    async with workspace(api, "go", files) as (room, owner):
        record = await ran(api, room, owner)
    assert record["status"] == "accepted", record
    assert record["stdout"] == "42 -1\n"


async def test_javascript_with_spaces_and_unicode_in_paths(
    env: tuple[Api, Judge0Double],
) -> None:
    api, double = env
    files = {
        "app dir/main ü $x.js": "const u = require('./my ütil.js');\nconsole.log(u.hi());\n",
        "app dir/my ütil.js": "exports.hi = () => 'hi from ütil';\n",
    }
    async with workspace(api, "javascript", files) as (room, owner):
        record = await ran(api, room, owner)
    assert record["status"] == "accepted", record
    assert record["stdout"] == "hi from ütil\n"
    assert record["entry"] == "app dir/main ü $x.js"
    assert "app dir/my ütil.js" in unzip(latest(double))


@pytest.mark.skipif(not os.path.exists(_TSC), reason="no tsc (npm install in web/)")
async def test_typescript_modules(env: tuple[Api, Judge0Double]) -> None:
    api, _ = env
    files = {
        "main.ts": "import { add } from './math';\nconsole.log(add(2, 3));\n",
        "math.ts": "export function add(a: number, b: number): number { return a + b; }\n",
    }
    async with workspace(api, "typescript", files) as (room, owner):
        record = await ran(api, room, owner)
    assert record["status"] == "accepted", record
    assert record["stdout"] == "5\n"


@pytest.mark.serial
async def test_limits_hold_for_a_program_of_several_files(
    env: tuple[Api, Judge0Double],
) -> None:
    api, double = env
    files = {"main.py": "import spin\nspin.forever()\n", "spin.py": "def forever():\n"
             "    while True:\n        pass\n"}  # fmt: skip
    async with workspace(api, "python", files) as (room, owner):
        record = await ran(api, room, owner)
    assert record["status"] == "time_limit", record
    assert latest(double).limits["cpu_time_limit"] == 5.0


async def test_a_judge0_that_does_not_describe_the_language(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A fresh server (no toolchain cached yet) on a Judge0 whose /languages/{id} is 404."""
    double = Judge0Double(auth_token=JUDGE0_TOKEN).start()
    try:
        settings = {**ENV, "CODEMENTOR_JUDGE0_URL": double.url}
        with ServerProcess(tmp_path_factory.mktemp("nolang"), settings) as proc:
            api = Api(proc)
            double.inject(404, "language", body={"error": "Couldn't find Language"})
            files = {"main.cpp": "int main() {}\n", "b.cpp": "\n"}
            async with workspace(api, "cpp", files) as (room, owner):
                record = await ran(api, room, owner)
    finally:
        double.stop()
    assert record["status"] == "unavailable", record
    assert "GET /languages/54 answered 404" in record["message"]
    assert not double.submissions


async def test_the_request_chooses_the_entry(env: tuple[Api, Judge0Double]) -> None:
    api, double = env
    files = {"main.py": "print('main')\n", "tools/other.py": "print('other')\n"}
    async with workspace(api, "python", files) as (room, owner):
        record = await ran(api, room, owner, entry="tools/other.py")
        assert record["status"] == "accepted", record
        assert record["stdout"] == "other\n"
        assert record["entry"] == "tools/other.py"
        assert unzip(latest(double))["run"].strip().endswith(" tools/other.py")
        token = sign(room, "owner")
        for bad, words in (
            ("nope.py", "is not a file of the workspace"),
            ("../main.py", ". or .. segments"),
            ("/main.py", "must be relative"),
        ):
            response = api.run(room, token, entry=bad)
            assert response.status_code == 422, (bad, response.text)
            assert words in response.text
            assert response.json()["fields"][0]["field"] == "entry"
        record = await ran(api, room, owner)  # without: meta.entry
        assert record["stdout"] == "main\n"


async def test_a_rust_workspace_is_refused_in_plain_words(env: tuple[Api, Judge0Double]) -> None:
    api, double = env
    before = len(double.submissions)
    files = {"main.rs": "mod util;\nfn main() { util::hi(); }\n", "util.rs": "pub fn hi() {}\n"}
    async with workspace(api, "rust", files) as (room, _):
        response = api.run(room, sign(room, "owner"))
    assert response.status_code == 422, response.text
    assert "cargo, which Judge0 CE does not have" in response.text
    assert len(double.submissions) == before


async def test_one_file_runs_as_before(env: tuple[Api, Judge0Double]) -> None:
    api, double = env
    room = api.create_room(language="python")
    async with peer(api, room) as owner:
        await owner.set_code(api, room, "print(input()[::-1])\n")
        record = await ran(api, room, owner, stdin="abc\n")
    assert record["status"] == "accepted", record
    assert record["stdout"] == "cba\n"
    assert record["entry"] == "main.py" and record["file_count"] == 1
    sub = latest(double)
    assert sub.language_id == 71
    assert sub.source_code == b"print(input()[::-1])\n"
    assert sub.additional_files is None


async def test_a_judge0_without_additional_files_says_so(env: tuple[Api, Judge0Double]) -> None:
    api, double = env
    double.additional_files_enabled = False
    try:
        files = {"main.py": "import util\n", "util.py": "print(1)\n"}
        async with workspace(api, "python", files) as (room, owner):
            record = await ran(api, room, owner)
    finally:
        double.additional_files_enabled = True
    assert record["status"] == "internal_error", record
    assert "setting additional files is not allowed" in record["message"]


# -- the program's scripts, without a server ------------------------------------------------

DETAILS = {
    "python": LanguageDetail(71, "Python (3.8.1)", "script.py", None,
                             "/usr/local/python-3.8.1/bin/python3 script.py"),
    "c": LanguageDetail(50, "C (GCC 9.2.0)", "main.c", "/usr/local/gcc-9.2.0/bin/gcc %s main.c",
                        "./a.out"),
    "cpp": LanguageDetail(54, "C++ (GCC 9.2.0)", "main.cpp",
                          "/usr/local/gcc-9.2.0/bin/g++ %s main.cpp",
                          "LD_LIBRARY_PATH=/usr/local/gcc-9.2.0/lib64 ./a.out"),
    "go": LanguageDetail(60, "Go (1.13.5)", "main.go",
                         "GOCACHE=/tmp/.cache/go-build /usr/local/go-1.13.5/bin/go build %s x",
                         "./main"),
}  # fmt: skip


def test_scripts_quote_every_path_and_use_judge0s_toolchain() -> None:
    files = {"it's main.py": "print(1)\n", "b.py": ""}
    plan = project.plan(files, "it's main.py", "python")
    compile_, run = project.scripts(plan, DETAILS["python"])
    assert compile_ is None
    assert run == "set -e\n/usr/local/python-3.8.1/bin/python3 'it'\"'\"'s main.py'\n"
    c = project.plan({"main.c": "int main(){}", "a b.c": "", "x.h": ""}, "main.c", "c")
    compile_, run = project.scripts(c, DETAILS["c"])
    assert compile_ is not None
    assert "/usr/local/gcc-9.2.0/bin/gcc -I . -o a.out 'a b.c' main.c -lm" in compile_
    cpp = project.plan({"main.cpp": "int main(){}", "u.cc": ""}, "main.cpp", "cpp")
    assert project.scripts(cpp, DETAILS["cpp"])[1].endswith(
        "LD_LIBRARY_PATH=/usr/local/gcc-9.2.0/lib64 ./a.out\n"
    )
    go = project.plan({"cmd/app/main.go": "package main", "x.go": ""}, "cmd/app/main.go", "go")
    compile_, _ = project.scripts(go, DETAILS["go"])
    assert compile_ is not None and "build -o main ./cmd/app" in compile_
    assert "GOCACHE=/tmp/.cache/go-build /usr/local/go-1.13.5/bin/go" in compile_


def test_java_class_comes_from_the_package_declaration() -> None:
    assert project.java_class("Main.java", "class Main {}") == "Main"
    declared = "// x\npackage  app . core ;\n"
    assert project.java_class("src/app/Main.java", declared) == "app.core.Main"


def test_plans_that_cannot_run_are_refused() -> None:
    two = {"main.py": "print(1)", "util.py": ""}
    with pytest.raises(project.ProjectRefused, match="not a file of the workspace"):
        project.plan(two, "other.py", "python")
    with pytest.raises(project.ProjectRefused, match="cargo"):
        project.plan({"main.rs": "fn main(){}", "u.rs": ""}, "main.rs", "rust")
    with pytest.raises(project.ProjectRefused, match="clashes with Judge0's run script"):
        project.plan({**two, "run": "x"}, "main.py", "python")
    with pytest.raises(project.ProjectRefused, match="is empty"):
        project.plan({"main.py": " \n", "util.py": "x"}, "main.py", "python")
    with pytest.raises(project.ProjectRefused, match="cannot run a program of several files"):
        project.plan({"main.kt": "x", "b.kt": "y"}, "main.kt", "kotlin")
    with pytest.raises(UnsupportedLanguage, match="no Multi-file program"):
        project.multi_file_language([Language(71, "Python (3.8.1)")])
    assert project.multi_file_language([Language(89, "Multi-file program")]).id == 89


def test_the_archive_holds_the_files_and_the_scripts() -> None:
    plan = project.plan({"main.py": "print(1)", "dir/ü.py": "x = 1"}, "main.py", "python")
    data = base64.b64decode(project.archive(plan, "echo build\n", "echo run\n"))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = {i.filename: zf.read(i).decode() for i in zf.infolist()}
    assert names == {"main.py": "print(1)", "dir/ü.py": "x = 1", "run": "echo run\n",
                     "compile": "echo build\n"}  # fmt: skip
    assert project.archive(plan, None, "r") == project.archive(plan, None, "r")  # stable


def test_get_languages_id_reads_the_toolchain(env: tuple[Api, Judge0Double]) -> None:
    _, double = env
    response = httpx.get(
        f"{double.url}/languages/62", headers={"X-Auth-Token": JUDGE0_TOKEN}, timeout=10
    )
    assert response.status_code == 200
    assert response.json()["run_cmd"].endswith(" Main")
    missing = httpx.get(
        f"{double.url}/languages/999", headers={"X-Auth-Token": JUDGE0_TOKEN}, timeout=10
    )
    assert missing.status_code == 404


def test_the_judge0_config_allows_additional_files() -> None:
    conf = (ROOT / "docker/judge0/judge0.conf").read_text().splitlines()
    assert "ENABLE_ADDITIONAL_FILES=true" in conf
