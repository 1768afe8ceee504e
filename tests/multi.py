"""Helpers for the multi-instance suite: random non-ASCII edits, bursts of them,
"does this document hold every edit" checks, and reading the shared store."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
from pycrdt import Doc, Text

from crdt.offsets import codepoint_to_utf8
from crdt.updates import decode_state_vector
from rooms.sqlite_store import SQLiteStore
from server.datadir import SQLITE_FILE
from tests.serverproc import ServerProcess
from tests.support import eventually
from tests.yclient import YClient

# 1-, 2-, 3- and 4-byte UTF-8 characters: a position computed in the wrong unit
# lands inside a character and shows up as divergence.
ALPHABET = "abcxyz é😀中ßñ€🎉\n"


def random_edit(text: Text, rng: random.Random, delete_ratio: float = 0.3) -> None:
    """Insert 1-4 random characters somewhere, or delete 1-3 characters."""
    current = str(text)
    if current and rng.random() < delete_ratio:
        start = rng.randrange(len(current))
        end = min(len(current), start + rng.randint(1, 3))
        del text[codepoint_to_utf8(current, start) : codepoint_to_utf8(current, end)]
    else:
        where = rng.randint(0, len(current))
        chunk = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 4)))
        text.insert(codepoint_to_utf8(current, where), chunk)


class Burst:
    """Every client edits at random, concurrently, until ``stop()``.

    Editing goes on whether or not a client is connected: a disconnected client
    keeps its edits and sends them in its next Step2, as a browser would."""

    def __init__(self, clients: Iterable[YClient], seed: int, pace: float = 0.02) -> None:
        self.clients = list(clients)
        self.seed = seed
        self.pace = pace
        self.edits = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> Burst:
        for i, client in enumerate(self.clients):
            rng = random.Random(self.seed * 1000 + i)
            self._tasks.append(asyncio.create_task(self._run(client, rng)))
        return self

    async def _run(self, client: YClient, rng: random.Random) -> None:
        while not self._stop.is_set():
            random_edit(client.text, rng)
            self.edits += 1
            await asyncio.sleep(rng.uniform(0, 2 * self.pace))

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


def union_state(docs: Iterable[Doc[Any]]) -> dict[int, int]:
    """Per client ID, the highest clock any of ``docs`` holds: every edit made."""
    union: dict[int, int] = {}
    for doc in docs:
        for client, clock in decode_state_vector(doc.get_state()).items():
            union[client] = max(union.get(client, 0), clock)
    return union


def missing(doc: Doc[Any], want: dict[int, int]) -> dict[int, tuple[int, int]]:
    """{client: (have, want)} for every client whose edits ``doc`` does not all hold."""
    have = decode_state_vector(doc.get_state())
    return {c: (have.get(c, 0), k) for c, k in want.items() if have.get(c, 0) < k}


def converged(clients: list[YClient]) -> bool:
    """Same text everywhere, and every document holds every edit any of them made."""
    want = union_state(c.doc for c in clients)
    texts = {str(c.text) for c in clients}
    return len(texts) == 1 and not any(missing(c.doc, want) for c in clients)


def describe(clients: list[YClient]) -> str:
    """Why ``converged`` is false: per client, its text length and what it lacks."""
    want = union_state(c.doc for c in clients)
    lines = []
    for i, c in enumerate(clients):
        # Why a client stopped: the server's close code, or its reader's own error.
        reader = c._reader
        done = reader is not None and reader.done() and not reader.cancelled()
        error = reader.exception() if done and reader is not None else None
        lines.append(
            f"client {i} ({c.url}, closed={c.closed.is_set()}, code={c.close_code}, "
            f"reason={c.close_reason!r}, reader error={error!r}): {len(str(c.text))} chars, "
            f"lacks {missing(c.doc, want)}"
        )
    return "\n".join(lines)


# Closes a y-websocket client answers by reconnecting: the server sheds load with 1013
# ("room busy: retry", a full verify budget) and restarts with 1012, both lossless because
# the client resends what the server lacks in its Step2 on reconnect.
RETRYABLE = frozenset({1012, 1013})


async def reconnect_retryable(clients: list[YClient]) -> None:
    """Reconnect the clients the server asked to retry, as a browser's provider does."""
    for client in clients:
        if client.closed.is_set() and client.close_code in RETRYABLE:
            await client.connect()


async def converge(clients: list[YClient], servers: list[ServerProcess], timeout: float) -> None:
    """Wait until ``converged`` (clients told to retry reconnect, as browsers do); on
    failure say who lacks what, with the server logs."""

    async def check() -> bool:
        await reconnect_retryable(clients)
        return converged(clients)

    try:
        await eventually(check, timeout, "convergence")
    except AssertionError:
        raise AssertionError(
            f"clients did not converge within {timeout}s\n{describe(clients)}\n" + logs(servers)
        ) from None


def logs(servers: list[ServerProcess], interesting: tuple[str, ...] = ()) -> str:
    """The servers' logs (only lines with one of ``interesting`` if given)."""
    out = []
    for server in servers:
        lines = server.log().splitlines()
        if interesting:
            lines = [line for line in lines if any(word in line for word in interesting)]
        out.append(f"--- server :{server.port} ---\n" + "\n".join(lines[-60:]))
    return "\n".join(out)


async def fresh_text(server: ServerProcess, room: str) -> tuple[str, Doc[Any]]:
    """What a new client with an empty document syncs from ``server``."""
    client = await YClient(server.ws_url(room)).connect()
    try:
        await client.wait_synced()
        return str(client.text), client.doc
    finally:
        await client.close()


def stored_doc(data_dir: Path, room: str) -> Doc[Any]:
    """The room as the shared SQLite file holds it (stop the servers first)."""
    store = SQLiteStore(data_dir / SQLITE_FILE)
    try:
        stored = store.load(room)
    finally:
        store.close()
    doc: Doc[Any] = Doc()
    doc.get("code", type=Text)
    if stored.snapshot is not None:
        doc.apply_update(stored.snapshot)
    for update in stored.updates:
        doc.apply_update(update)
    return doc


def doc_text(doc: Doc[Any]) -> str:
    return str(doc.get("code", type=Text))


async def stop_all(servers: list[ServerProcess]) -> None:
    """SIGTERM every live server at once (each flushes) and wait for them."""
    await asyncio.gather(
        *(asyncio.to_thread(s.stop) for s in servers if s.alive()),
    )


async def readyz(http: httpx.AsyncClient, server: ServerProcess) -> tuple[int, dict[str, Any]]:
    response = await http.get(server.http_url + "/readyz")
    return response.status_code, response.json()


async def metric(http: httpx.AsyncClient, server: ServerProcess, name: str) -> float:
    """``ServerProcess.metric`` without blocking the event loop."""
    text = (await http.get(server.http_url + "/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name)] in " {":
            total += float(line.rsplit(" ", 1)[1])
    return total


async def start_instances(
    server_factory: Callable[..., ServerProcess],
    redis_url: str,
    data_dir: Path,
    ids: Iterable[str],
    **env: str,
) -> list[ServerProcess]:
    """Start one server per instance ID, all on ``data_dir`` (one SQLite file) and
    one Redis. The first starts alone, the others in parallel once the SQLite file
    exists: servers creating the same file at once may fail to start (see
    ``test_instances_creating_one_sqlite_file_together_all_start``)."""

    def start(instance: str) -> ServerProcess:
        return server_factory(
            data_dir=data_dir,
            CODEMENTOR_REDIS_URL=redis_url,
            CODEMENTOR_INSTANCE_ID=instance,
            **env,
        )

    first, *others = list(ids)
    started = [await asyncio.to_thread(start, first)]
    started += await asyncio.gather(*(asyncio.to_thread(start, i) for i in others))
    return started


async def connect_all(urls: Iterable[str]) -> list[YClient]:
    clients = [await YClient(url).connect() for url in urls]
    for client in clients:
        await client.wait_synced()
    return clients


async def close_all(clients: Iterable[YClient]) -> None:
    for client in clients:
        if client.closed.is_set():
            continue
        await client.close()
