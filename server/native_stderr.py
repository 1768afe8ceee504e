"""What native code writes to stderr, turned into structured log lines.

Rust libraries (yrs, through pycrdt) report a panic by writing to file descriptor
2 themselves, before Python even sees the ``PanicException``: a multi-line report
that breaks a log shipper expecting one JSON object per line. The Python side of
every such panic is caught and logged where it happens (``rooms.room``), so the
native report adds nothing but noise.

``captured()`` points descriptor 2 at a pipe for as long as the server runs; our
log handler writes to the original stderr instead. A thread reads the pipe: a
Rust panic report becomes one ``native_panic`` event at debug level (the
location and message; backtraces are switched off with ``RUST_BACKTRACE=0``),
and any other line one ``native_stderr`` warning. On exit descriptor 2 is
restored, so a message printed after the server stops reaches the terminal.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any

from server.logs import get_logger

log = get_logger("codementor.native")

# "thread 'name' panicked at file:line:col:" (newer Rust adds the thread id: "'name' (42)")
PANIC_START = re.compile(r"^thread '(?P<thread>.*)'(?: \(\d+\))? panicked at (?P<location>.+?):?$")
READ_SIZE = 65536
JOIN_TIMEOUT = 2.0


class _Reader(threading.Thread):
    """Reads the pipe until end of file and logs what it reads, line by line."""

    def __init__(self, fd: int) -> None:
        super().__init__(name="native-stderr", daemon=True)
        self._fd = fd
        self._panic: dict[str, Any] | None = None

    def run(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self._fd, READ_SIZE)
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._line(line.decode("utf-8", "replace").rstrip("\r"))
        if pending:
            self._line(pending.decode("utf-8", "replace"))
        self._end_panic()
        os.close(self._fd)

    def _line(self, line: str) -> None:
        try:
            start = PANIC_START.match(line)
            if start is not None:
                self._end_panic()
                self._panic = {"location": start["location"], "message": []}
            elif self._panic is not None:
                # The message is the line after the location; a "note:" about
                # backtraces may follow (the first panic of a process only).
                if not line.startswith("note: "):
                    self._panic["message"].append(line)
                self._end_panic()
            elif line.strip():
                log.warning("native_stderr", line=line[:2000])
        except Exception:  # a logging failure must not stop the pipe from draining
            pass

    def _end_panic(self) -> None:
        panic, self._panic = self._panic, None
        if panic is not None:
            message = " ".join(part for part in panic["message"] if part)[:2000]
            log.debug("native_panic", location=panic["location"], message=message)


def install() -> tuple[IO[str], Callable[[], None]]:
    """Route descriptor 2 through the reader. Returns a text stream on the original
    stderr (for the log handler, which must not write into the pipe) and a function
    that restores descriptor 2 and waits for the reader to finish. The original
    descriptor stays open: the log handler keeps writing to it until the process ends."""
    os.environ["RUST_BACKTRACE"] = "0"  # read at each panic: no backtrace in the report
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    reader = _Reader(read_end)
    reader.start()
    stream = open(original, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115

    def restore() -> None:
        sys.stderr.flush()
        os.dup2(original, 2)  # the pipe's last writer is gone: the reader sees its end
        reader.join(JOIN_TIMEOUT)

    return stream, restore


@contextlib.contextmanager
def captured() -> Iterator[IO[str]]:
    """``install`` for the duration of a block."""
    stream, restore = install()
    try:
        yield stream
    finally:
        restore()
