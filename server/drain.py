"""Graceful drain on SIGTERM: take no new peers, store everything, then close with 1012.

uvicorn's own shutdown closes every websocket first (with 1012) and runs the app's
shutdown only afterwards, so a client could reconnect to another replica before its
last edits were stored. ``SignalDrain`` puts the app's drain in front: it wraps the
SIGTERM/SIGINT handlers uvicorn installed (in every worker process alike), runs the
drain (``/readyz`` turns 503, new websockets are refused with 1012, every room is
flushed in one store write, every peer is closed with 1012), and only then hands the
signal to uvicorn, whose shutdown proceeds as usual (open sockets, background tasks,
then the lifespan shutdown: runner, AI, the final flush). A second signal skips the
wait and goes straight to uvicorn.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

from server.logs import get_logger

log = get_logger("codementor.drain")

Handler = Callable[[int, FrameType | None], Any]
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class SignalDrain:
    def __init__(self, drain: Callable[[], Awaitable[bool]], timeout: float) -> None:
        self._drain = drain
        self._timeout = timeout
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self) -> bool:
        """Wrap the server's signal handlers. False (nothing done) off the main thread or
        when no server handles the signals (the app runs inside something else)."""
        if threading.current_thread() is not threading.main_thread():
            return False
        self._loop = asyncio.get_running_loop()
        installed = False
        for sig in SIGNALS:
            previous = signal.getsignal(sig)
            if callable(previous):
                signal.signal(sig, self._wrap(previous))
                installed = True
        return installed

    def _wrap(self, previous: Handler) -> Handler:
        def on_signal(sig: int, frame: FrameType | None) -> None:
            if self._task is not None or self._loop is None:
                previous(sig, frame)  # a second signal: shut down now
                return
            # Signal handlers may not touch the loop directly; this is signal-safe.
            self._loop.call_soon_threadsafe(self._start, previous, sig)

        return on_signal

    def _start(self, previous: Handler, sig: int) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(previous, sig), name="drain")

    async def _run(self, previous: Handler, sig: int) -> None:
        started = time.monotonic()
        log.info("draining", signal=signal.Signals(sig).name, timeout=self._timeout)
        try:
            async with asyncio.timeout(self._timeout):
                await self._drain()
        except TimeoutError:
            log.error("drain_timeout", seconds=self._timeout)
        except Exception:
            log.exception("drain_failed")  # the lifespan shutdown still flushes
        log.info("drain_done", seconds=round(time.monotonic() - started, 3))
        previous(sig, None)
