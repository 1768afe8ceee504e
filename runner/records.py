"""A run as it lives in the shared document: ``runs`` Map, run id -> Map of primitives.

Every value is a string, a float or a bool (pycrdt stores ints as floats anyway),
so any Yjs client reads a run with ``runs.get(id).toJSON()``. Keys (all optional
but ``id``, ``status``, ``ts``):

| key | type | meaning |
|---|---|---|
| ``id`` | str | the run id (also the key in ``runs``) |
| ``status`` | str | ``queued``, ``running``, then one of ``FINAL`` |
| ``language`` | str | ``meta.language`` at the snapshot |
| ``by``, ``by_id`` | str | who asked: display name and user id (the verified token's) |
| ``ts`` | float | when it was asked (unix seconds) |
| ``state`` | str | base64 Yjs state vector of the document the code was taken from |
| ``code_bytes`` | float | size of the snapshotted code (every file's, summed) |
| ``entry`` | str | the path of the file it ran (``meta.entry``, or the request's) |
| ``file_count`` | float | how many files the workspace had ("ran main.py (3 files)") |
| ``paths`` | str | the workspace's paths, sorted, one per line (for reading error lines) |
| ``stdin`` | str | the input given (cut like outputs) |
| ``started_at``, ``finished_at`` | float | unix seconds: Judge0 began executing; the end |
| ``stdout``, ``stderr``, ``compile_output`` | str | outputs, UTF-8 (undecodable bytes as U+FFFD) |
| ``stdout_cut`` ... | bool | the field was cut at the output limit |
| ``message`` | str | a readable explanation (Judge0's, or the runner's) |
| ``time``, ``wall_time`` | float | CPU and wall seconds (Judge0) |
| ``memory`` | float | peak memory, KB (Judge0) |
| ``exit_code``, ``exit_signal`` | float | the program's exit code / fatal signal |
| ``judge0_status`` | str | Judge0's own status description |
| ``runner``, ``deadline`` | str, float | the server process that owns it, and when it gives up |
| ``cancelled_by``, ``cancelled_by_id`` | str | who stopped it (status ``cancelled``) |
"""

from __future__ import annotations

from typing import Any

from runner.judge0 import Submission

QUEUED = "queued"
RUNNING = "running"
ACCEPTED = "accepted"
COMPILE_ERROR = "compile_error"
RUNTIME_ERROR = "runtime_error"
TIME_LIMIT = "time_limit"
MEMORY_LIMIT = "memory_limit"
INTERNAL_ERROR = "internal_error"
UNAVAILABLE = "unavailable"
INTERRUPTED = "interrupted"
CANCELLED = "cancelled"  # someone pressed Stop
WRONG_ANSWER = "wrong_answer"  # a check (runner/checks.py): it ran, a test's output differed

IN_FLIGHT = frozenset({QUEUED, RUNNING})
FINAL = (
    ACCEPTED, COMPILE_ERROR, RUNTIME_ERROR, TIME_LIMIT, MEMORY_LIMIT,
    INTERNAL_ERROR, UNAVAILABLE, INTERRUPTED, CANCELLED, WRONG_ANSWER,
)  # fmt: skip
STATUSES = (QUEUED, RUNNING, *FINAL)

OUTPUT_FIELDS = ("stdout", "stderr", "compile_output")

# What a program prints when an allocation fails (Judge0 has no memory-limit status:
# isolate's limit surfaces as a runtime error, integrations.md 1.6).
_OOM_MARKERS = (
    "MemoryError",
    "OutOfMemoryError",
    "std::bad_alloc",
    "out of memory",
    "JavaScript heap out of memory",
    "memory allocation of",
    "Cannot allocate memory",
)


def cut_text(raw: bytes, limit: int) -> tuple[str, bool]:
    """``raw`` as text (invalid UTF-8 replaced), cut to at most ``limit`` bytes of UTF-8
    at a character boundary. Returns (text, was_cut)."""
    text = raw.decode("utf-8", errors="replace")
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text, False
    return encoded[:limit].decode("utf-8", errors="ignore"), True


def final_status(sub: Submission, memory_limit_kb: int) -> str:
    """Judge0 status id -> our final status (integrations.md 1.6)."""
    sid = sub.status_id
    if sid in (3, 4):  # 4 (Wrong Answer): runs send no expected_output; checks read the id
        return ACCEPTED
    if sid == 5:
        return TIME_LIMIT
    if sid == 6:
        return COMPILE_ERROR
    if 7 <= sid <= 12:
        near_limit = sub.memory is not None and sub.memory >= 0.95 * memory_limit_kb
        stderr = sub.stderr.decode("utf-8", errors="replace")
        if near_limit or any(marker in stderr for marker in _OOM_MARKERS):
            return MEMORY_LIMIT
        return RUNTIME_ERROR
    return INTERNAL_ERROR  # 13 Internal Error, 14 Exec Format Error, anything unknown


def result_fields(
    sub: Submission, status: str, output_limit: int, memory_limit_kb: int
) -> dict[str, Any]:
    """The document fields of a finished Judge0 submission."""
    fields: dict[str, Any] = {"status": status, "judge0_status": sub.status}
    for name in OUTPUT_FIELDS:
        text, cut = cut_text(getattr(sub, name), output_limit)
        fields[name] = text
        fields[f"{name}_cut"] = cut
    message, _ = cut_text(sub.message, 4096)
    if status == INTERNAL_ERROR:
        message = (
            "the runner is misconfigured (Judge0 reported an internal error"
            + (f": {message}" if message else "")
            + ")"
        )
    elif status == MEMORY_LIMIT and not message:
        message = f"the program ran out of memory (limit {memory_limit_text(memory_limit_kb)})"
    fields["message"] = message
    for name in ("time", "wall_time", "memory"):
        value = getattr(sub, name)
        if value is not None:
            fields[name] = float(value)
    if sub.exit_code is not None:
        fields["exit_code"] = float(sub.exit_code)
    if sub.exit_signal is not None:
        fields["exit_signal"] = float(sub.exit_signal)
    return fields


def memory_limit_text(kb: int) -> str:
    return f"{kb / 1024:g} MB"


def as_json(value: Any) -> dict[str, Any]:
    """A run Map (or its ``to_py()``) as a JSON object."""
    data = value.to_py() if hasattr(value, "to_py") else value
    return dict(data) if isinstance(data, dict) else {}
