"""A Judge0 CE 1.13.1 test double: a real HTTP server (Starlette under uvicorn, on its own
event loop in a thread) speaking Judge0's wire format for the endpoints the runner calls.

- ``GET /languages``: the 1.13.1 active list (ids and names as in ``db/languages/active.rb``).
- ``POST /submissions?base64_encoded=true&wait=false``: ``201 {"token": uuid}`` at once.
  The submission is ``1 In Queue``, then ``2 Processing``, then final, after
  ``queue_delay`` and ``processing_delay``. Rails' 422 answers for a missing or unknown
  ``language_id``, a blank ``source_code`` and out-of-range limits; ``503 {"error":
  "queue is full"}`` past ``queue_limit``; ``400 wait not allowed`` for ``wait=true``;
  ``400 invalid fields``.
- ``GET /submissions/{token}?base64_encoded=true&fields=...``: the 8 default fields, a
  ``fields`` subset or ``*``; text fields base64 the Ruby way (``encode64``: a newline
  every 60 characters and at the end), ``time``/``wall_time`` decimal strings, ``memory``
  an int (KB); without ``base64_encoded=true`` a non-UTF-8 output is Judge0's 400.
- ``DELETE /submissions/{token}``, as submissions_controller.rb of 1.13.1 has it: ``403``
  (empty body) unless ``authz_token`` is set and the request carries it in
  ``authz_header`` (``X-Auth-User``); ``400 {"error": "delete not allowed"}`` unless
  ``delete_enabled`` (``ENABLE_SUBMISSION_DELETE``); ``404`` for an unknown token;
  ``400 {"error": "submission cannot be deleted because its status is 1 (In Queue)"}``
  (or ``2 (Processing)``); else the submission is forgotten and answered (base64 forced).
- ``expected_output`` (optional): a submission that would be ``3 Accepted`` is ``4 Wrong
  Answer`` when its stdout differs from it, both stripped the way Judge0 CE's
  isolate_job.rb does (each line's trailing whitespace, then trailing blank lines).
- Authentication: with ``auth_token`` set, a request without that ``X-Auth-Token``
  (header, or query parameter of the same name) gets ``401`` with an empty body.

- ``GET /languages/{id}``: ``{id, name, is_archived, source_file, compile_cmd, run_cmd}``
  as 1.13.1 answers it, but the commands name this machine's toolchains (``TOOLS``): the
  double is a Judge0 whose compilers live where this machine has them.
- Language 89, "Multi-file program" (``isolate_job.rb`` of 1.13.1): ``source_code`` must
  be absent (422 ``must be blank``), ``additional_files`` present (``can't be blank``)
  and allowed (``additional_files_enabled``, Judge0's ``ENABLE_ADDITIONAL_FILES``; else
  422 ``setting additional files is not allowed``); ``additional_files`` is always base64.
  The zip is unpacked into a fresh box; ``/bin/bash compile`` runs if the zip has one
  (stdin ``/dev/null``, stderr into ``compile_output``, Judge0's maximum limits: a non-zero
  exit is ``6 Compilation Error``, a timeout ``Compilation time limit exceeded.``), then
  ``/bin/bash run`` under the submission's limits with Judge0's sandbox environment
  (``HOME``, a short ``PATH``). CPU and wall time are enforced as for Python; memory is
  measured (peak RSS) and a run past the limit ends like a cgroup kill (signal 9): an
  address-space limit would stop a JVM or Node before it starts, which Judge0's cgroup
  limit does not.

Execution: Python submissions (``Python (...)`` languages) really run, in a subprocess
with the submission's CPU (``RLIMIT_CPU``), memory (``RLIMIT_AS``) and wall-time limits,
and get Judge0's status for what happened (3, 5, 7-12 from the signal, 11 for a
non-zero exit). Any other language echoes its stdin (Accepted). ``script(marker, ...)``
gives every submission whose source contains ``marker`` a fixed result instead (for
compile errors, internal errors, or an answer without running anything).

Control from tests (plain attributes, read on every request): ``response_delay`` (slow
mode: every answer waits), ``hang`` (requests are never answered while set), ``kill()``
/ ``revive()`` (the port closes: connection refused; reopens on the same port, with the
same submissions), ``inject(status, ...)`` (the next answers of an endpoint),
``queue_limit`` and ``hold`` (submissions stay ``2 Processing`` while set).
Observations: ``calls`` (method, endpoint, status of each request), ``headers`` (method,
endpoint and the request's headers, lowercase names: a ``traceparent``), ``submissions``,
``deleted``, ``max_in_flight``.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import dataclasses
import io
import json
import os
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support import free_port

LANGUAGES: list[dict[str, Any]] = [
    {"id": 45, "name": "Assembly (NASM 2.14.02)"},
    {"id": 46, "name": "Bash (5.0.0)"},
    {"id": 48, "name": "C (GCC 7.4.0)"},
    {"id": 52, "name": "C++ (GCC 7.4.0)"},
    {"id": 49, "name": "C (GCC 8.3.0)"},
    {"id": 53, "name": "C++ (GCC 8.3.0)"},
    {"id": 50, "name": "C (GCC 9.2.0)"},
    {"id": 54, "name": "C++ (GCC 9.2.0)"},
    {"id": 51, "name": "C# (Mono 6.6.0.161)"},
    {"id": 60, "name": "Go (1.13.5)"},
    {"id": 62, "name": "Java (OpenJDK 13.0.1)"},
    {"id": 63, "name": "JavaScript (Node.js 12.14.0)"},
    {"id": 78, "name": "Kotlin (1.3.70)"},
    {"id": 70, "name": "Python (2.7.17)"},
    {"id": 71, "name": "Python (3.8.1)"},
    {"id": 72, "name": "Ruby (2.7.0)"},
    {"id": 73, "name": "Rust (1.40.0)"},
    {"id": 82, "name": "SQL (SQLite 3.27.2)"},
    {"id": 74, "name": "TypeScript (3.7.4)"},
    {"id": 75, "name": "C (Clang 7.0.1)"},
    {"id": 76, "name": "C++ (Clang 7.0.1)"},
    {"id": 89, "name": "Multi-file program"},
]
LANGUAGE_NAMES = {lang["id"]: lang["name"] for lang in LANGUAGES}
MULTI_FILE = 89
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tool(name: str, judge0_path: str) -> str:
    """This machine's ``name``, else the path Judge0 1.13.1 has it at (absent here)."""
    return shutil.which(name) or judge0_path


_TSC = os.path.join(ROOT, "web", "node_modules", ".bin", "tsc")
GO_CACHE = os.path.join(tempfile.gettempdir(), "judge0-double-go-cache")
# GET /languages/{id}: 1.13.1's source_file / compile_cmd / run_cmd, with local tools.
TOOLS: dict[int, tuple[str, str | None, str]] = {
    71: ("script.py", None, f"{sys.executable} script.py"),
    50: ("main.c", f"{_tool('gcc', '/usr/local/gcc-9.2.0/bin/gcc')} %s main.c", "./a.out"),
    54: (
        "main.cpp",
        f"{_tool('g++', '/usr/local/gcc-9.2.0/bin/g++')} %s main.cpp",
        "LD_LIBRARY_PATH=/usr/local/lib ./a.out",
    ),
    62: (
        "Main.java",
        f"{_tool('javac', '/usr/local/openjdk13/bin/javac')} %s Main.java",
        f"{_tool('java', '/usr/local/openjdk13/bin/java')} Main",
    ),
    60: (
        "main.go",
        f"GOCACHE={GO_CACHE} {_tool('go', '/usr/local/go-1.13.5/bin/go')} build %s main.go",
        "./main",
    ),
    63: ("script.js", None, f"{_tool('node', '/usr/local/node-12.14.0/bin/node')} script.js"),
    74: (
        "script.ts",
        f"{_TSC if os.path.exists(_TSC) else '/usr/bin/tsc'} %s script.ts",
        f"{_tool('node', '/usr/local/node-12.14.0/bin/node')} script.js",
    ),
    73: ("main.rs", f"{_tool('rustc', '/usr/local/rust-1.40.0/bin/rustc')} %s main.rs", "./main"),
}
# The sandbox's environment (isolate -E in isolate_job.rb): HOME=/tmp, a short PATH.
BOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MAX_CPU, MAX_WALL, MAX_MEMORY_KB = 15.0, 20.0, 512000  # compile runs with Judge0's maxima
STATUSES = {
    1: "In Queue", 2: "Processing", 3: "Accepted", 4: "Wrong Answer",
    5: "Time Limit Exceeded", 6: "Compilation Error", 7: "Runtime Error (SIGSEGV)",
    8: "Runtime Error (SIGXFSZ)", 9: "Runtime Error (SIGFPE)", 10: "Runtime Error (SIGABRT)",
    11: "Runtime Error (NZEC)", 12: "Runtime Error (Other)", 13: "Internal Error",
    14: "Exec Format Error",
}  # fmt: skip
SIGNAL_STATUS = {11: 7, 25: 8, 8: 9, 6: 10}
B64_ALPHABET = frozenset(string.ascii_letters + string.digits + "+/")
DEFAULT_FIELDS = (
    "token", "time", "memory", "stdout", "stderr", "compile_output", "message", "status",
)  # fmt: skip
ALL_FIELDS = (
    "token", "source_code", "language_id", "stdin", "expected_output", "stdout", "status_id",
    "created_at", "finished_at", "time", "memory", "stderr", "number_of_runs",
    "cpu_time_limit", "cpu_extra_time", "wall_time_limit", "memory_limit", "stack_limit",
    "max_processes_and_or_threads", "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit", "max_file_size", "compile_output",
    "exit_code", "exit_signal", "message", "wall_time", "compiler_options",
    "command_line_arguments", "redirect_stderr_to_stdout", "callback_url",
    "additional_files", "enable_network", "status", "language",
)  # fmt: skip
TEXT_FIELDS = ("source_code", "stdin", "expected_output", "stdout", "stderr", "compile_output",
               "message")  # fmt: skip
UTF8_ERROR = (
    "some attributes for this submission cannot be converted to UTF-8, use base64_encoded=true "
    "query parameter"
)
# (field, low, high, default) as config.rb / submission.rb of 1.13.1 validate them.
LIMITS = (
    ("cpu_time_limit", 0.0, 15.0, 5.0),
    ("cpu_extra_time", 0.0, 5.0, 1.0),
    ("wall_time_limit", 1.0, 20.0, 10.0),
    ("memory_limit", 2048.0, 512000.0, 128000.0),
    ("stack_limit", 0.0, 128000.0, 64000.0),
    ("max_processes_and_or_threads", 1.0, 120.0, 60.0),
    ("max_file_size", 0.0, 4096.0, 1024.0),
    ("number_of_runs", 1.0, 20.0, 1.0),
)

# Runs the program under the submission's limits: a fresh, small process forks the
# program (RLIMIT_CPU: SIGXCPU past it; RLIMIT_AS: allocations fail past it), waits for it
# with wait4 and writes its exit status and resource usage to a report file. (A child
# forked straight from the big test process would report that process's RSS as its peak.)
# ``memory_kb`` 0: no address-space limit (measured only). The program's argv follows.
LAUNCHER = """
import json, os, resource, sys
cpu, memory_kb, report, argv = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
pid = os.fork()
if pid == 0:
    soft = max(1, int(cpu + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 1))
    if memory_kb:
        resource.setrlimit(resource.RLIMIT_AS, (memory_kb * 1024, memory_kb * 1024))
    os.execv(argv[0], argv)
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as handle:
    json.dump({"status": status, "cpu": usage.ru_utime + usage.ru_stime,
               "maxrss": usage.ru_maxrss}, handle)
"""


def ruby_encode64(data: bytes) -> str:
    """Ruby's ``Base64.encode64``: lines of 60 characters, each ending in a newline."""
    if not data:
        return ""
    flat = base64.b64encode(data).decode("ascii")
    return "".join(flat[i : i + 60] + "\n" for i in range(0, len(flat), 60))


@dataclass
class Result:
    status_id: int
    stdout: bytes | None = None
    stderr: bytes | None = None
    compile_output: bytes | None = None
    message: bytes | None = None
    time: str | None = "0.01"
    wall_time: str | None = "0.02"
    memory: int | None = 3200
    exit_code: int | None = 0
    exit_signal: int | None = None


@dataclass
class Script:
    marker: str
    result: Result
    delay: float = 0.0  # extra processing time


@dataclass
class Submission:
    token: str
    language_id: int
    source_code: bytes
    stdin: bytes | None
    limits: dict[str, float]
    created_at: float = field(default_factory=time.time)
    status_id: int = 1
    result: Result | None = None
    finished_at: float | None = None
    additional_files: bytes | None = None  # the zip, decoded
    expected_output: bytes | None = None  # compared with stdout at the end (3 or 4)


@dataclass
class Injection:
    status: int
    endpoint: str | None  # "languages", "submit", "get" or None for any
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    """One sandboxed process: what it printed, how it ended, what it used."""

    stdout: bytes
    stderr: bytes
    wait_status: int
    cpu_time: float
    maxrss: int  # KB
    wall_time: float
    timed_out: bool


def sandboxed(
    argv: list[str],
    box: str,
    stdin: bytes,
    cpu: float,
    wall: float,
    memory_kb: int,
    env: dict[str, str] | None = None,
    merge_stderr: bool = False,
) -> Outcome:
    """Run ``argv`` in ``box`` under the CPU (RLIMIT_CPU), address-space (``memory_kb``;
    0: none) and wall-time limits, its process group killed at the wall limit."""
    with tempfile.TemporaryDirectory(prefix="judge0-double-report-") as scratch:
        report = os.path.join(scratch, "report.json")
        command = [sys.executable, "-I", "-S", "-c", LAUNCHER, str(cpu), str(memory_kb), report,
                   *argv]  # fmt: skip
        started = time.monotonic()
        with subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            cwd=box, start_new_session=True, env=env,
        ) as proc:  # fmt: skip
            timed_out = False
            try:
                stdout, stderr = proc.communicate(stdin, timeout=wall)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                stdout, stderr = proc.communicate()
        wall_time = time.monotonic() - started
        try:
            with open(report) as handle:
                usage = json.load(handle)
        except (OSError, ValueError):
            usage = {"status": signal.SIGKILL, "cpu": 0.0, "maxrss": 0}
    return Outcome(
        stdout or b"", stderr or b"", int(usage["status"]), float(usage["cpu"]),
        int(usage["maxrss"]), wall_time, timed_out,
    )  # fmt: skip


def execute_python(source: bytes, stdin: bytes, cpu: float, wall: float, memory_kb: int) -> Result:
    """Run ``source`` with Python under the limits; Judge0's status for what happened."""
    with tempfile.TemporaryDirectory(prefix="judge0-double-") as box:
        path = os.path.join(box, "script.py")
        with open(path, "wb") as handle:
            handle.write(source)
        outcome = sandboxed([sys.executable, "-I", path], box, stdin, cpu, wall, memory_kb)
    return judged(outcome, cpu)


def execute_project(
    archive: bytes, stdin: bytes, cpu: float, wall: float, memory_kb: int
) -> Result:
    """A "Multi-file program" as isolate_job.rb runs one: unzip, ``compile``, ``run``."""
    with tempfile.TemporaryDirectory(prefix="judge0-double-box-") as box:
        home = os.path.join(box, ".home")  # Judge0: HOME=/tmp, private to the sandbox
        os.mkdir(home)
        env = {"HOME": home, "PATH": BOX_PATH, "LANG": "C.UTF-8"}
        try:
            with zipfile.ZipFile(io.BytesIO(archive)) as zf:
                for info in zf.infolist():  # unzip -n: never overwrite
                    if not os.path.exists(os.path.join(box, info.filename)):
                        zf.extract(info, box)
        except zipfile.BadZipFile:
            pass  # unzip fails quietly; the missing run script fails below
        if os.path.isfile(os.path.join(box, "compile")):
            built = sandboxed(
                ["/bin/bash", "compile"], box, b"", MAX_CPU, MAX_WALL, 0, env, merge_stderr=True
            )
            status = built.wait_status
            if built.timed_out or not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
                output = built.stdout
                if built.timed_out:
                    output = b"Compilation time limit exceeded."
                return Result(
                    status_id=6, compile_output=output or None, time=None, wall_time=None,
                    memory=None, exit_code=None,
                )  # fmt: skip
        outcome = sandboxed(["/bin/bash", "run"], box, stdin, cpu, wall, 0, env)
    result = judged(outcome, cpu)
    if result.status_id == 11 and result.exit_code == 128 + signal.SIGXCPU:
        # bash reports its child's SIGXCPU as exit status 152, and wait4's CPU time then
        # reads 4.999-5.000 for a 5 s limit as often as above it. isolate would have
        # stopped the whole box: a time limit.
        result.status_id, result.message = 5, b"Time limit exceeded"
    if result.status_id == 3 and outcome.maxrss > memory_kb:  # the cgroup would have killed it
        result.status_id, result.exit_code, result.exit_signal = 12, None, int(signal.SIGKILL)
        result.message = f"Caught fatal signal {int(signal.SIGKILL)}".encode()
    return result


def judged(outcome: Outcome, cpu: float) -> Result:
    """Judge0's status and fields for how a program ended."""
    stdout, stderr, wall_time = outcome.stdout, outcome.stderr, outcome.wall_time
    timed_out, wait_status, cpu_time = outcome.timed_out, outcome.wait_status, outcome.cpu_time
    result = Result(
        status_id=3,
        stdout=stdout,
        stderr=stderr,
        time=f"{cpu_time:.3f}",
        wall_time=f"{wall_time:.3f}",
        memory=outcome.maxrss,
        exit_code=0,
    )
    if timed_out:
        result.status_id, result.message = 5, b"Time limit exceeded"
        result.exit_code, result.exit_signal = None, int(signal.SIGKILL)
    elif os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        result.exit_code, result.exit_signal = None, sig
        if sig == signal.SIGXCPU or cpu_time >= cpu:
            result.status_id, result.message = 5, b"Time limit exceeded"
        else:
            result.status_id = SIGNAL_STATUS.get(sig, 12)
            result.message = f"Caught fatal signal {sig}".encode()
    elif cpu_time > cpu:
        result.status_id, result.message = 5, b"Time limit exceeded"
        result.exit_code = os.WEXITSTATUS(wait_status)
    elif os.WEXITSTATUS(wait_status) != 0:
        code = os.WEXITSTATUS(wait_status)
        result.status_id, result.exit_code = 11, code
        result.message = f"Exited with error status {code}".encode()
    return result


class Judge0Double:
    def __init__(
        self,
        auth_token: str | None = "double-token",
        port: int | None = None,
        authz_token: str | None = None,
        delete_enabled: bool = False,
        additional_files_enabled: bool = True,
    ) -> None:
        self.additional_files_enabled = additional_files_enabled  # ENABLE_ADDITIONAL_FILES
        self.auth_token = auth_token
        self.authz_token = authz_token  # Judge0's AUTHZ_TOKEN
        self.authz_header = "X-Auth-User"  # Judge0's AUTHZ_HEADER default
        self.delete_enabled = delete_enabled  # Judge0's ENABLE_SUBMISSION_DELETE
        self.port = port or free_port()
        # controls
        self.response_delay = 0.0
        self.hang = False
        self.queue_delay = 0.0
        self.processing_delay = 0.0
        self.queue_limit = 100
        self.allow_wait = False
        self.hold = False
        # observations
        self.calls: list[tuple[str, str, int]] = []
        self.headers: list[tuple[str, str, dict[str, str]]] = []
        self.submissions: dict[str, Submission] = {}
        self.deleted: dict[str, Submission] = {}  # token -> what DELETE removed
        self.in_flight = 0
        self.max_in_flight = 0
        self._scripts: list[Script] = []
        self._injections: deque[Injection] = deque()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: uvicorn.Server | None = None
        self._serving: concurrent.futures.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.app = Starlette(
            routes=[
                Route("/languages", self._languages, methods=["GET"]),
                Route("/languages/{id:int}", self._language, methods=["GET"]),
                Route("/submissions", self._create, methods=["POST"]),
                Route("/submissions/{token}", self._show, methods=["GET"]),
                Route("/submissions/{token}", self._destroy, methods=["DELETE"]),
            ]
        )

    # -- lifecycle (called from the test's thread) ---------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Judge0Double:
        self._thread.start()
        self.revive()
        return self

    def revive(self) -> None:
        """(Re)open the port and serve; submissions made before are still known."""
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
            lifespan="off", ws="none", http="h11", timeout_graceful_shutdown=1,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._serving = asyncio.run_coroutine_threadsafe(self._server.serve(), self._loop)
        deadline = time.monotonic() + 10
        while not self._server.started:
            if self._serving.done():
                self._serving.result()  # raises what went wrong
            if time.monotonic() > deadline:
                raise RuntimeError("the Judge0 double did not start")
            time.sleep(0.01)

    def kill(self) -> None:
        """Close the port (connections are refused) until ``revive()``."""
        if self._server is None or self._serving is None:
            return
        self._server.should_exit = True
        self._serving.result(15)
        self._server = None

    def stop(self) -> None:
        self.hang = False
        self.kill()

        async def cancel_all() -> None:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_all(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(15)
        self._loop.close()

    def __enter__(self) -> Judge0Double:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting -------------------------------------------------------------------

    def script(self, marker: str, status_id: int = 3, delay: float = 0.0, **fields: Any) -> None:
        """Submissions whose source contains ``marker`` finish with this result. Byte or
        str fields: stdout, stderr, compile_output, message; time/wall_time strings, memory
        int, exit_code, exit_signal."""
        values: dict[str, Any] = {}
        for key, value in fields.items():
            values[key] = value.encode() if isinstance(value, str) and key in TEXT_FIELDS else value
        self._scripts.append(Script(marker, Result(status_id=status_id, **values), delay))

    def inject(
        self,
        status: int,
        endpoint: str | None = None,
        times: int = 1,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next ``times`` requests to ``endpoint`` ("languages", "submit", "get",
        "delete", None: any) answer ``status`` with ``body`` (JSON; None: an empty body)."""
        for _ in range(times):
            self._injections.append(Injection(status, endpoint, body, dict(headers or {})))

    def count(self, endpoint: str, status: int | None = None) -> int:
        return sum(1 for _, e, s in self.calls if e == endpoint and status in (None, s))

    # -- HTTP -------------------------------------------------------------------------

    async def _gate(self, request: Request, endpoint: str) -> Response | None:
        """Slow mode, hang, auth and injected answers: a response, or None to go on."""
        if self.response_delay:
            await asyncio.sleep(self.response_delay)
        while self.hang:  # noqa: ASYNC110 - set from the test's thread
            await asyncio.sleep(0.02)
        if self.auth_token is not None:
            given = request.headers.get("x-auth-token") or request.query_params.get("X-Auth-Token")
            if given != self.auth_token:
                return Response(status_code=401)
        for injection in list(self._injections):
            if injection.endpoint in (None, endpoint):
                self._injections.remove(injection)
                if injection.body is None:
                    return Response(status_code=injection.status, headers=injection.headers)
                return JSONResponse(injection.body, injection.status, headers=injection.headers)
        return None

    def _record(self, request: Request, endpoint: str, response: Response) -> Response:
        self.calls.append((request.method, endpoint, response.status_code))
        self.headers.append((request.method, endpoint, dict(request.headers)))
        return response

    async def _languages(self, request: Request) -> Response:
        gated = await self._gate(request, "languages")
        return self._record(request, "languages", gated or JSONResponse(LANGUAGES))

    async def _language(self, request: Request) -> Response:
        gated = await self._gate(request, "language")
        return self._record(request, "language", gated or _language_detail(request))

    async def _create(self, request: Request) -> Response:
        gated = await self._gate(request, "submit")
        return self._record(request, "submit", gated or await self._create_submission(request))

    async def _show(self, request: Request) -> Response:
        gated = await self._gate(request, "get")
        return self._record(request, "get", gated or self._show_submission(request))

    async def _destroy(self, request: Request) -> Response:
        gated = await self._gate(request, "delete")
        return self._record(request, "delete", gated or self._destroy_submission(request))

    def _destroy_submission(self, request: Request) -> Response:
        """The before_actions, then ``destroy``, in Judge0's order."""
        given = request.headers.get(self.authz_header) or request.query_params.get(
            self.authz_header
        )
        if not self.authz_token or given != self.authz_token:
            return Response(status_code=403)
        bad_fields = _invalid_fields(request.query_params.get("fields"))
        if bad_fields:
            return JSONResponse({"error": f"invalid fields: [{', '.join(bad_fields)}]"}, 400)
        if not self.delete_enabled:
            return JSONResponse({"error": "delete not allowed"}, 400)
        sub = self.submissions.get(request.path_params["token"])
        if sub is None:
            return JSONResponse({"error": "Couldn't find Submission"}, 404)
        if sub.status_id in (1, 2):
            status = f"{sub.status_id} ({STATUSES[sub.status_id]})"
            return JSONResponse(
                {"error": f"submission cannot be deleted because its status is {status}"}, 400
            )
        del self.submissions[sub.token]
        self.deleted[sub.token] = sub
        return self._render(sub, request.query_params.get("fields"), encoded=True)

    async def _create_submission(self, request: Request) -> Response:
        params = request.query_params
        if params.get("wait") == "true" and not self.allow_wait:
            return JSONResponse({"error": "wait not allowed"}, 400)
        bad_fields = _invalid_fields(params.get("fields"))
        if bad_fields:
            return JSONResponse({"error": f"invalid fields: [{', '.join(bad_fields)}]"}, 400)
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return JSONResponse({"error": "invalid JSON"}, 400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "invalid JSON"}, 400)
        encoded = params.get("base64_encoded") == "true"
        errors: dict[str, list[str]] = {}
        language_id = body.get("language_id")
        if language_id in (None, ""):
            errors["language_id"] = ["can't be blank"]
        elif language_id not in LANGUAGE_NAMES:
            errors["language_id"] = [f"language with id {language_id} doesn't exist"]
        source = _text_in(body.get("source_code"), encoded)
        project = language_id == MULTI_FILE
        # Always base64, whatever base64_encoded says (submissions_controller.rb).
        archive = _text_in(body.get("additional_files"), True) or None
        if project and source.strip():
            errors["source_code"] = ["must be blank"]
        elif not project and not source.strip():
            errors["source_code"] = ["can't be blank"]
        if project and archive is None:
            errors["additional_files"] = ["can't be blank"]
        if archive is not None and not self.additional_files_enabled:
            errors.setdefault("additional_files", []).append(
                "setting additional files is not allowed"
            )
        limits: dict[str, float] = {}
        for name, low, high, default in LIMITS:
            value = body.get(name, default)
            if value is None:
                value = default
            if not isinstance(value, int | float) or isinstance(value, bool):
                errors.setdefault(name, []).append("is not a number")
                continue
            if value < low:
                errors.setdefault(name, []).append(f"must be greater than or equal to {low}")
            elif value > high:
                errors.setdefault(name, []).append(f"must be less than or equal to {high}")
            limits[name] = float(value)
        if errors:
            return JSONResponse(errors, 422)
        queued = sum(1 for s in self.submissions.values() if s.status_id == 1)
        if queued + 1 > self.queue_limit:
            return JSONResponse({"error": "queue is full"}, 503)
        stdin = body.get("stdin")
        sub = Submission(
            token=str(uuid.uuid4()),
            language_id=int(language_id),  # type: ignore[arg-type]
            source_code=source,
            stdin=None if stdin is None else _text_in(stdin, encoded),
            limits=limits,
            additional_files=archive,
            expected_output=(
                None
                if body.get("expected_output") is None
                else _text_in(body.get("expected_output"), encoded)
            ),
        )
        self.submissions[sub.token] = sub
        self._started(sub)
        scripted = self._scripted(sub)
        if scripted is not None and not (
            self.queue_delay or self.processing_delay or scripted.delay
        ):
            self._finish(sub, scripted.result)  # answering at once
        elif (
            scripted is None
            and not _is_python(sub)
            and sub.language_id != MULTI_FILE
            and not (self.queue_delay or self.processing_delay)
        ):
            self._finish(sub, _echo(sub))
        else:
            task = asyncio.get_running_loop().create_task(self._progress(sub, scripted))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return JSONResponse({"token": sub.token}, 201)

    def _show_submission(self, request: Request) -> Response:
        sub = self.submissions.get(request.path_params["token"])
        if sub is None:
            return JSONResponse({"error": "Couldn't find Submission"}, 404)
        requested = request.query_params.get("fields")
        bad_fields = _invalid_fields(requested)
        if bad_fields:
            return JSONResponse({"error": f"invalid fields: [{', '.join(bad_fields)}]"}, 400)
        encoded = request.query_params.get("base64_encoded") == "true"
        return self._render(sub, requested, encoded)

    def _render(self, sub: Submission, requested: str | None, encoded: bool) -> Response:
        if not requested:
            names: tuple[str, ...] = DEFAULT_FIELDS
        elif requested.strip() == "*":
            names = ALL_FIELDS
        else:
            names = tuple(n.strip() for n in requested.split(",") if n.strip())
        raw = self._attributes(sub)
        out: dict[str, Any] = {}
        for name in names:
            value = raw.get(name)
            if name in TEXT_FIELDS and isinstance(value, bytes):
                if encoded:
                    value = ruby_encode64(value)
                else:
                    try:
                        value = value.decode("utf-8")
                    except UnicodeDecodeError:
                        return JSONResponse({"error": UTF8_ERROR}, 400)
            out[name] = value
        return JSONResponse(out)

    # -- the submission's life ----------------------------------------------------------

    def _scripted(self, sub: Submission) -> Script | None:
        text = sub.source_code.decode("utf-8", "replace")
        for script in self._scripts:
            if script.marker in text:
                return script
        return None

    async def _progress(self, sub: Submission, scripted: Script | None) -> None:
        try:
            await asyncio.sleep(self.queue_delay)
            sub.status_id = 2
            await asyncio.sleep(self.processing_delay + (scripted.delay if scripted else 0.0))
            while self.hold:  # noqa: ASYNC110 - set from the test's thread
                await asyncio.sleep(0.02)
            if scripted is not None:
                result = scripted.result
            elif sub.language_id == MULTI_FILE:
                result = await asyncio.to_thread(
                    execute_project,
                    sub.additional_files or b"",
                    sub.stdin or b"",
                    sub.limits["cpu_time_limit"],
                    sub.limits["wall_time_limit"],
                    int(sub.limits["memory_limit"]),
                )
            elif _is_python(sub):
                result = await asyncio.to_thread(
                    execute_python,
                    sub.source_code,
                    sub.stdin or b"",
                    sub.limits["cpu_time_limit"],
                    sub.limits["wall_time_limit"],
                    int(sub.limits["memory_limit"]),
                )
            else:
                result = _echo(sub)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the double's own failure: Judge0 says Internal Error
            result = Result(status_id=13, message=repr(exc).encode())
        self._finish(sub, result)

    def _started(self, sub: Submission) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _finish(self, sub: Submission, result: Result) -> None:
        if result.status_id == 3 and sub.expected_output is not None:
            # isolate_job.rb: Accepted only when the stripped outputs are equal.
            if _judge0_strip(sub.expected_output) != _judge0_strip(result.stdout or b""):
                result = dataclasses.replace(result, status_id=4)
        sub.result = result
        sub.status_id = result.status_id
        sub.finished_at = time.time()
        self.in_flight -= 1

    def _attributes(self, sub: Submission) -> dict[str, Any]:
        result = sub.result
        attributes: dict[str, Any] = {
            "token": sub.token,
            "source_code": sub.source_code or None,
            "language_id": sub.language_id,
            "stdin": sub.stdin,
            "expected_output": sub.expected_output,
            "status_id": sub.status_id,
            "status": {"id": sub.status_id, "description": STATUSES[sub.status_id]},
            "language": {"id": sub.language_id, "name": LANGUAGE_NAMES[sub.language_id]},
            "created_at": _iso(sub.created_at),
            "finished_at": _iso(sub.finished_at) if sub.finished_at else None,
            "stdout": result.stdout if result is not None else None,
            "stderr": result.stderr if result is not None else None,
            "compile_output": result.compile_output if result is not None else None,
            "message": result.message if result is not None else None,
            "time": result.time if result is not None else None,
            "wall_time": result.wall_time if result is not None else None,
            "memory": result.memory if result is not None else None,
            "exit_code": result.exit_code if result is not None else None,
            "exit_signal": result.exit_signal if result is not None else None,
            "additional_files": (
                base64.b64encode(sub.additional_files).decode("ascii")
                if sub.additional_files
                else None
            ),
        }
        for name, value in sub.limits.items():
            attributes[name] = str(value) if "time" in name else int(value)
        return attributes


def _language_detail(request: Request) -> Response:
    """``GET /languages/{id}`` (languages_controller.rb#show)."""
    language_id = request.path_params["id"]
    name = LANGUAGE_NAMES.get(language_id)
    if name is None:
        return JSONResponse({"error": f"Couldn't find Language with 'id'={language_id}"}, 404)
    source_file, compile_cmd, run_cmd = TOOLS.get(language_id, (None, None, None))
    return JSONResponse(
        {"id": language_id, "name": name, "is_archived": False, "source_file": source_file,
         "compile_cmd": compile_cmd, "run_cmd": run_cmd}
    )  # fmt: skip


def _invalid_fields(requested: str | None) -> list[str]:
    if not requested or requested.strip() == "*":
        return []
    names = [n.strip() for n in requested.split(",") if n.strip()]
    return [n for n in names if n not in ALL_FIELDS]


def _text_in(value: Any, encoded: bool) -> bytes:
    """An input text field: base64 when ``base64_encoded=true`` (decoded leniently, like
    Ruby's ``decode64``: invalid input becomes garbage, never an error)."""
    if not isinstance(value, str):
        return b""
    if not encoded:
        return value.encode("utf-8")
    cleaned = "".join(c for c in value if c in B64_ALPHABET)
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned)
    except ValueError:
        return b""


def _judge0_strip(text: bytes) -> bytes:
    """Judge0 CE's ``strip`` (isolate_job.rb): each line's trailing whitespace, then the
    whole text's trailing whitespace, removed before comparing with expected_output."""
    return b"\n".join(line.rstrip() for line in text.split(b"\n")).rstrip()


def _is_python(sub: Submission) -> bool:
    return str(LANGUAGE_NAMES[sub.language_id]).startswith("Python (3")


def _echo(sub: Submission) -> Result:
    return Result(status_id=3, stdout=sub.stdin or b"", stderr=None)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"
