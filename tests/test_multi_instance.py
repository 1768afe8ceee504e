"""Several server processes share rooms through a real redis-server.

Faults are real: SIGSTOP/SIGCONT makes Redis unreachable without losing its data,
stop + start brings it back empty (no persistence), SIGKILL takes an instance
down without a flush. Edits are random, concurrent and non-ASCII; "holds every
edit" means: its state vector covers every client's (``tests.multi``).

The scenarios are numbered; the tests after them pin down, one
failure each, what the scenarios found.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pycrdt import Doc, Text

from crdt import protocol
from rooms.observer import RoomObserver
from rooms.redis_broker import RedisBroker, RedisSettings
from tests.multi import (
    Burst,
    close_all,
    connect_all,
    converge,
    doc_text,
    fresh_text,
    logs,
    metric,
    missing,
    readyz,
    start_instances,
    stop_all,
    stored_doc,
    union_state,
)
from tests.redisproc import RedisProcess
from tests.serverproc import ROOT, ServerProcess
from tests.support import eventually
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

Factory = Callable[..., ServerProcess]
CONVERGE_TIMEOUT = 20.0


async def test_two_instances_share_a_room(
    server_factory: Callable[..., ServerProcess], redis_server: RedisProcess, tmp_path: Path
) -> None:
    env = {"CODEMENTOR_REDIS_URL": redis_server.url}
    a = server_factory(data_dir=tmp_path / "shared", CODEMENTOR_INSTANCE_ID="a", **env)
    b = server_factory(data_dir=tmp_path / "shared", CODEMENTOR_INSTANCE_ID="b", **env)
    async with YClient(a.ws_url("r1")) as ca, YClient(b.ws_url("r1")) as cb:
        await ca.wait_synced()
        await cb.wait_synced()
        ca.text += "from a;"
        await eventually(lambda: str(cb.text) == "from a;")
        cb.text += "from b;"
        await eventually(lambda: str(ca.text) == "from a;from b;")
        await ca.set_awareness({"user": {"name": "alice"}})
        await eventually(lambda: ca.doc.client_id in cb.awareness)


async def check_everything_everywhere(
    servers: list[ServerProcess],
    clients: list[YClient],
    data_dir: Path,
    room: str,
) -> str:
    """Clients converged: a fresh client on every live instance gets their text; then
    (clients closed, servers SIGTERMed) the store holds that text and every edit."""
    await converge(clients, servers, CONVERGE_TIMEOUT)
    expected = str(clients[0].text)
    want = union_state(c.doc for c in clients)
    for server in servers:
        if server.alive():
            text, doc = await fresh_text(server, room)
            assert text == expected, f"fresh client on :{server.port}\n{logs(servers)}"
            assert not missing(doc, want)
    await close_all(clients)
    await stop_all(servers)
    stored = stored_doc(data_dir, room)
    assert not missing(stored, want), logs(servers)
    assert doc_text(stored) == expected
    return expected


# -- 1. plain convergence ---------------------------------------------------------


async def test_three_instances_six_clients_random_edits_converge(
    server_factory: Factory, redis_server: RedisProcess, tmp_path: Path
) -> None:
    data, room = tmp_path / "shared", "busy"
    servers = await start_instances(server_factory, redis_server.url, data, "abc")
    clients = await connect_all(servers[i % 3].ws_url(room) for i in range(6))
    burst = Burst(clients, seed=1).start()
    await asyncio.sleep(3.0)  # the burst's length
    await burst.stop()
    assert burst.edits > 300
    expected = await check_everything_everywhere(servers, clients, data, room)
    assert any(ord(ch) > 0xFFFF for ch in expected)  # 4-byte characters made it through


# -- 2. Redis unreachable ---------------------------------------------------------


async def test_redis_unreachable_mid_burst_loses_nothing(
    server_factory: Factory, redis_server: RedisProcess, tmp_path: Path
) -> None:
    data, room = tmp_path / "shared", "stalled"
    servers = await start_instances(server_factory, redis_server.url, data, "ab")
    a, b = servers
    clients = await connect_all(s.ws_url(room) for s in (a, a, b, b))
    assert redis_server.proc is not None
    redis_pid = redis_server.proc.pid
    burst = Burst(clients, seed=2).start()
    probes: list[tuple[float, float, str, int | None, dict[str, Any]]] = []
    max_buffered = 0.0

    async with httpx.AsyncClient(timeout=5) as http:
        await asyncio.sleep(1.0)
        for server in servers:
            assert (await readyz(http, server))[0] == 200

        async def probe(server: ServerProcess, done: asyncio.Event) -> None:
            # A readiness probe with a 2 s timeout, as an orchestrator would send.
            while not done.is_set():
                sent = time.monotonic()
                try:
                    response = await http.get(server.http_url + "/readyz", timeout=2.0)
                    status, body = response.status_code, response.json()
                except httpx.TimeoutException:
                    status, body = None, {}
                probes.append((sent, time.monotonic(), server.http_url, status, body))
                await asyncio.sleep(0.1)

        async def sample_buffered(done: asyncio.Event) -> None:
            nonlocal max_buffered
            while not done.is_set():
                for server in servers:
                    value = await metric(http, server, "codementor_redis_buffered_updates")
                    max_buffered = max(max_buffered, value)
                await asyncio.sleep(0.1)

        async def local_fanout(writer: YClient, reader: YClient) -> None:
            """Clients of one instance keep seeing each other with Redis gone."""
            me = writer.doc.client_id
            for _ in range(3):
                mine = {me: union_state([writer.doc])[me]}
                await eventually(lambda mine=mine: not missing(reader.doc, mine), timeout=1.0)
                await asyncio.sleep(0.2)

        done = asyncio.Event()
        os.kill(redis_pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            background = [
                asyncio.create_task(probe(a, done)),
                asyncio.create_task(probe(b, done)),
                asyncio.create_task(sample_buffered(done)),
            ]
            await asyncio.gather(
                local_fanout(clients[0], clients[1]), local_fanout(clients[3], clients[2])
            )
            assert time.monotonic() - stopped_at < 3.0, "local fan-out waited for Redis"
            await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - stopped_at)))
        finally:
            os.kill(redis_pid, signal.SIGCONT)
        continued_at = time.monotonic()
        done.set()
        await asyncio.gather(*background)

        async def ready_again() -> bool:
            results = [await readyz(http, server) for server in servers]
            return all(s == 200 and body["checks"]["redis"] == "ok" for s, body in results)

        await eventually(ready_again, 15.0, "/readyz 200 after SIGCONT")
        await asyncio.sleep(1.0)  # the burst goes on after the recovery
        await burst.stop()
        failures = sum([await metric(http, s, "codementor_redis_publish_failures_total")
                        for s in servers])  # fmt: skip

    await check_everything_everywhere(servers, clients, data, room)
    assert failures > 0 or max_buffered > 0, (failures, max_buffered)
    # Readiness while Redis was stopped: some probe sent after SIGSTOP must have been
    # answered 503 (redis in error) before SIGCONT.
    during = [p for p in probes if p[0] >= stopped_at and p[1] < continued_at]
    unready = [p for p in during if p[3] == 503 and p[4]["checks"]["redis"].startswith("error")]
    summary = "\n".join(
        f"sent +{p[0] - stopped_at:.2f}s answered +{p[1] - stopped_at:.2f}s {p[2]}: "
        f"{p[3] if p[3] is not None else 'no answer within 2 s'} {p[4]}"
        for p in probes
        if p[0] >= stopped_at - 0.5
    )
    assert unready, (
        f"no 503 from /readyz during a {continued_at - stopped_at:.1f}s Redis stop "
        f"(SIGCONT at +{continued_at - stopped_at:.2f}s):\n{summary}"
    )


# -- 3. Redis restarted empty -----------------------------------------------------


async def test_redis_restarted_empty_mid_burst_reseeds(
    server_factory: Factory, redis_server: RedisProcess, tmp_path: Path
) -> None:
    data, room = tmp_path / "shared", "amnesia"
    servers = await start_instances(server_factory, redis_server.url, data, "ab")
    a, b = servers
    clients = await connect_all(s.ws_url(room) for s in (a, a, b, b))
    burst = Burst(clients, seed=3, pace=0.01).start()
    await asyncio.sleep(1.5)

    def restart() -> None:
        redis_server.stop()
        redis_server.start()

    await asyncio.to_thread(restart)
    with redis_server.client() as r:
        assert r.xlen(f"codementor:room:{room}") < 50  # it did come back (nearly) empty
    await asyncio.sleep(1.5)  # the burst goes on against the new Redis
    await burst.stop()

    await converge(clients, servers, CONVERGE_TIMEOUT)
    expected = str(clients[0].text)
    want = union_state(c.doc for c in clients)
    # An instance that loads the room now has only the store and the new stream.
    late = server_factory(
        data_dir=data, CODEMENTOR_REDIS_URL=redis_server.url, CODEMENTOR_INSTANCE_ID="late"
    )
    text, doc = await fresh_text(late, room)
    assert text == expected and not missing(doc, want)
    lost = [
        s.port
        for s in servers
        if not any(e["event"] == "stream_lost" and e.get("room") == room for e in s.events())
    ]
    await check_everything_everywhere([*servers, late], clients, data, room)
    assert not lost, f"instances on {lost} did not notice Redis lost the stream\n" + logs(
        servers, ("codementor.redis",)
    )


# -- 4. an instance dies ----------------------------------------------------------


async def test_sigkilled_instance_clients_move_and_keep_their_edits(
    server_factory: Factory, redis_server: RedisProcess, tmp_path: Path
) -> None:
    data, room = tmp_path / "shared", "crash"
    servers = await start_instances(server_factory, redis_server.url, data, "abc")
    a, b, c = servers
    clients = await connect_all(s.ws_url(room) for s in (a, a, b, b, c, c))
    orphans = clients[2:4]
    burst = Burst(clients, seed=4).start()
    await asyncio.sleep(1.5)
    await asyncio.to_thread(b.kill)
    for orphan in orphans:
        await orphan.wait_closed()
    await asyncio.sleep(0.3)  # they go on editing offline
    offline = union_state(o.doc for o in orphans)
    for orphan, target in zip(orphans, (a, c), strict=True):
        orphan.url = target.ws_url(room)
        await orphan.connect()
        await orphan.wait_synced()
    await asyncio.sleep(1.0)
    await burst.stop()

    survivors = [a, c]
    await converge(clients, survivors, CONVERGE_TIMEOUT)
    for client in clients:
        assert not missing(client.doc, offline)  # the orphans' offline edits arrived
    await check_everything_everywhere(survivors, clients, data, room)


# -- 5. joining a busy room -------------------------------------------------------


class SamplingClient(YClient):
    """Records its text after every sync frame it applies."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.samples: list[str] = []

    async def _handle(self, frame: bytes) -> None:
        await super()._handle(frame)
        if frame[0] == protocol.MessageType.SYNC:
            self.samples.append(str(self.text))


async def test_new_instance_joins_busy_room_without_gaps(
    server_factory: Factory, redis_server: RedisProcess, tmp_path: Path
) -> None:
    data, room = tmp_path / "shared", "tokens"
    (a, b) = await start_instances(server_factory, redis_server.url, data, "ab")
    writer, watcher = await connect_all([a.ws_url(room), b.ws_url(room)])
    count = 0
    done = asyncio.Event()

    async def write() -> None:
        nonlocal count
        while not done.is_set():
            writer.text += f"{count};"
            count += 1
            await asyncio.sleep(0.003)

    task = asyncio.create_task(write())
    await asyncio.sleep(1.0)
    joined_at = count  # written before instance C even starts
    c = await asyncio.to_thread(
        server_factory,
        data_dir=data,
        CODEMENTOR_REDIS_URL=redis_server.url,
        CODEMENTOR_INSTANCE_ID="c",
    )
    joiner = SamplingClient(c.ws_url(room))
    await joiner.connect()
    await joiner.wait_synced()
    await asyncio.sleep(1.0)
    done.set()
    await task
    final = str(writer.text)
    assert final == "".join(f"{i};" for i in range(count))
    await eventually(lambda: str(joiner.text) == final, timeout=10)
    await eventually(lambda: str(watcher.text) == final, timeout=10)
    await close_all([writer, watcher, joiner])
    assert joined_at > 50 and count > joined_at + 50, (joined_at, count)
    assert len(joiner.samples) > 10
    bad = [s for s in joiner.samples if not final.startswith(s)]
    assert not bad, f"samples that are not a prefix of the writer's text: {bad[:3]}"
    lengths = [len(s) for s in joiner.samples]
    assert lengths == sorted(lengths), "the joiner's text went backwards"
    first = next(s for s in joiner.samples if s)
    assert len(first) >= len("".join(f"{i};" for i in range(joined_at)))


# -- 6. compaction lease and stream trimming ----------------------------------------


def backdated_seed(redis: Any, key: str, age_ms: int, parts: list[str]) -> list[bytes]:
    """Put updates into the room's stream as if an instance, gone since, had published
    them ``age_ms`` ago (entry IDs are milliseconds). Returns their IDs."""
    doc: Doc[Any] = Doc()
    text = doc.get("code", type=Text)
    base = int(time.time() * 1000) - age_ms
    ids = []
    for i, part in enumerate(parts):
        before = doc.get_state()
        text += part
        update = doc.get_update(before)
        ids.append(redis.xadd(key, {"u": update, "src": b"gone"}, id=f"{base + i}-0"))
    return ids


async def test_compaction_under_one_lease_trims_old_entries_only(
    server_factory: Factory, redis_server: RedisProcess, tmp_path: Path
) -> None:
    data, room = tmp_path / "shared", "compacted"
    key = f"codementor:room:{room}"
    parts = ["seed é ", "😀 ", "中文 ", "ß\n", "last "]
    with redis_server.client() as r:
        old_ids = backdated_seed(r, key, 120_000, parts)
        assert r.xlen(key) == len(parts)
    env = {"CODEMENTOR_COMPACT_UPDATES": "20"}
    servers = await start_instances(server_factory, redis_server.url, data, "ab", **env)
    a, b = servers
    clients = await connect_all(s.ws_url(room) for s in (a, b))
    assert all(str(c.text) == "".join(parts) for c in clients)  # caught up from the stream
    burst = Burst(clients, seed=6).start()
    await asyncio.sleep(2.5)
    await burst.stop()
    await converge(clients, servers, CONVERGE_TIMEOUT)
    expected = str(clients[0].text)
    want = union_state(c.doc for c in clients)

    async with httpx.AsyncClient(timeout=5) as http:
        with redis_server.client() as r:

            async def trimmed() -> bool:
                return bool(r.xlen(key) < int(r.xinfo_stream(key)["entries-added"]))

            await eventually(trimmed, 10.0, "stream trimmed")
            compactions = {
                s.port: await metric(http, s, "codementor_store_compaction_seconds_count")
                for s in servers
            }
            holder = r.get(f"codementor:lease:{room}")
            ttl = r.pttl(f"codementor:lease:{room}")
            leases = [await metric(http, s, "codementor_redis_leases_acquired_total")
                      for s in servers]  # fmt: skip
            info = r.xinfo_stream(key)
            length, added = r.xlen(key), int(info["entries-added"])
            remaining = {i for i, _ in r.xrange(key)}
    assert holder in (b"a", b"b") and ttl > 0, (holder, ttl)
    assert sum(leases) == 1, f"leases acquired per instance {leases}, lease held by {holder!r}"
    holder_server = a if holder == b"a" else b
    other = b if holder_server is a else a
    assert compactions[holder_server.port] > 0
    assert compactions[other.port] == 0, "the instance without the lease compacted"
    # Only the entries older than the 60 s safety window went; everything the
    # instances published during the test (seconds old) is still there.
    assert not remaining & set(old_ids), "backdated entries were not trimmed"
    assert length == added - len(old_ids), (length, added)

    # A new instance loads from the snapshot and what is left of the stream.
    late = server_factory(data_dir=data, CODEMENTOR_REDIS_URL=redis_server.url,
                          CODEMENTOR_INSTANCE_ID="late", **env)  # fmt: skip
    text, doc = await fresh_text(late, room)
    assert text == expected and not missing(doc, want)
    await check_everything_everywhere([*servers, late], clients, data, room)


# -- regressions for what the scenarios above found --------------------------------


@pytest.mark.serial
async def test_publish_queue_overflow_during_a_short_outage_folds_into_a_reseed(
    server_factory: Factory, redis_server: RedisProcess, tmp_path: Path
) -> None:
    """Past its bound (10,000 updates) the publish queue folds into one full-state
    update. Here it overflows while a publish is in flight (Redis stopped for under
    the 5 s timeout); after SIGCONT the other instance must get everything."""
    data, room = tmp_path / "shared", "flood"
    a, b = await start_instances(server_factory, redis_server.url, data, "ab")
    writer, local, remote = await connect_all([a.ws_url(room), a.ws_url(room), b.ws_url(room)])
    writer.text += "start;"
    await eventually(lambda: str(remote.text) == "start;")
    assert redis_server.proc is not None
    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        sent = 0
        while sent < 12_000 and time.monotonic() - stopped_at < 3.0:
            for _ in range(50):
                writer.text += "x"
                sent += 1
            await asyncio.sleep(0.001)  # paces the burst; lets frames go out
        # Instance A applied every one of them (its other client saw them)...
        await eventually(lambda: len(str(local.text)) == len("start;") + sent, timeout=4.0)
        assert sent >= 12_000, f"only {sent} updates before the outage had to end"
        assert time.monotonic() - stopped_at < 4.5, "the in-flight publish timed out"
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
    # ...and, with Redis back, instance B must get them too.
    expected = str(writer.text)
    try:
        await eventually(lambda: str(remote.text) == expected, timeout=15.0)
    except AssertionError:
        raise AssertionError(
            f"instance B stuck at {len(str(remote.text))} of {len(expected)} chars after "
            f"SIGCONT\n{logs([a, b], ('codementor',))}"
        ) from None
    await check_everything_everywhere([a, b], [writer, local, remote], data, room)


async def test_restart_is_detected_even_when_a_new_entry_lands_first(
    server_factory: Factory, redis_server: RedisProcess, tmp_path: Path
) -> None:
    """Instance X publishes ``u``; Y has not read it yet (Y is paused) when Redis
    restarts empty. X's next edit ``w`` reaches the new Redis before X's reader looks
    at it. X must still notice the loss and re-seed, or Y never gets ``u`` (and holds
    ``w``, which depends on it, as pending forever)."""
    data, room = tmp_path / "shared", "late-detect"
    key = f"codementor:room:{room}"
    x, y = await start_instances(server_factory, redis_server.url, data, "xy")
    cx, cy = await connect_all([x.ws_url(room), y.ws_url(room)])
    cx.text += "before;"
    await eventually(lambda: str(cy.text) == "before;")
    assert y.proc is not None
    with redis_server.client() as r:
        length = r.xlen(key)
        y.proc.send_signal(signal.SIGSTOP)  # Y's reader is slow, say a long GC pause
        try:
            # Past XREAD's 500 ms block: Y's pending read has been answered (empty),
            # so Redis holds no outstanding read of Y's to push u into.
            await asyncio.sleep(0.8)
            cx.text += "u;"
            await eventually(lambda: r.xlen(key) > length)  # u is in Redis, unread by Y
            await asyncio.to_thread(redis_server.stop)
            # Down long enough for the readers' reconnect backoff to grow past 1 s.
            await asyncio.sleep(2.0)
            await asyncio.to_thread(redis_server.start)
            with redis_server.client() as fresh:
                cx.text += "w;"
                await eventually(lambda: fresh.xlen(key) > 0, timeout=5.0)
        finally:
            y.proc.send_signal(signal.SIGCONT)
    try:
        await eventually(lambda: str(cy.text) == "before;u;w;", timeout=10.0)
    except AssertionError:
        raise AssertionError(
            f"Y's client has {str(cy.text)!r}, X's {str(cx.text)!r}\n"
            + logs([x, y], ("codementor.redis",))
        ) from None
    await check_everything_everywhere([x, y], [cx, cy], data, room)


class FullStateHook:
    """Wraps a room's document: the first time the broker takes the full state (a
    re-seed), ``hook`` runs on the next loop iteration, i.e. while that full state
    is being sent."""

    def __init__(self, doc: Doc[Any], hook: Callable[[], None]) -> None:
        self._doc = doc
        self._hook: Callable[[], None] | None = hook

    def get_update(self, *args: Any) -> bytes:
        update = self._doc.get_update(*args)
        if not args and self._hook is not None:
            asyncio.get_running_loop().call_soon(self._hook)
            self._hook = None
        return update


class FakeRoom:
    def __init__(self, name: str, doc: Any) -> None:
        self.name = name
        self.doc = doc

    def apply_remote_update(self, update: bytes, origin: bytes | None = None) -> None:
        pass

    def apply_remote_awareness(self, payload: bytes, instance: str, on_stage: bool) -> None:
        pass


async def test_update_made_while_a_reseed_is_sent_is_published(
    redis_server: RedisProcess,
) -> None:
    """In process, against the real broker and Redis: a room's queue folds into a
    re-seed (bound of 3 updates); an update the room makes while that full state is
    on its way to Redis must be published too (it is not in the full state)."""
    name = "reseed-window"
    doc: Doc[Any] = Doc()
    text = doc.get("code", type=Text)
    settings = RedisSettings(url=redis_server.url, instance_id="x", max_buffered_updates=3)
    broker = RedisBroker(settings, RoomObserver())

    def edit(part: str) -> None:
        before = doc.get_state()
        text.insert(len(str(text).encode()), part)
        broker.publish_update(name, doc.get_update(before))

    room = FakeRoom(name, FullStateHook(doc, lambda: edit("late;")))
    await broker.start()
    try:
        await broker.attach(room)
        for i in range(5):  # the fourth overflows the queue: a re-seed replaces it
            edit(f"{i};")
        with redis_server.client() as r:

            def published() -> str:
                replica: Doc[Any] = Doc()
                for _, fields in r.xrange(f"codementor:room:{name}"):
                    replica.apply_update(fields[b"u"])
                return str(replica.get("code", type=Text))

            try:
                await eventually(lambda: published() == "0;1;2;3;4;late;", timeout=5.0)
            except AssertionError:
                raise AssertionError(
                    f"Redis holds {published()!r}, the room {str(text)!r}"
                ) from None
    finally:
        await broker.close()


class Hiccup:
    """Makes the wrapped coroutine function raise ``RuntimeError`` on its first call: an
    error redis-py is not supposed to raise, as on a connection cut mid-reply."""

    def __init__(self, inner: Callable[..., Any]) -> None:
        self.inner = inner
        self.raised = False

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.raised:
            self.raised = True
            raise RuntimeError("unexpected error from the client library")
        return await self.inner(*args, **kwargs)


async def test_a_publish_batch_writes_the_entries_then_the_news(
    redis_server: RedisProcess,
) -> None:
    """One script call writes a batch (``PUBLISH_SCRIPT``): every update as its own entry
    in its room's stream, in order, with ``src`` and the origin when there is one, then
    one news entry naming the rooms; the same entries the pipeline of XADDs wrote, so
    instances of either version read each other."""
    docs = {name: FakeRoom(name, Doc()) for name in ("news-a", "news-b")}
    broker = RedisBroker(RedisSettings(url=redis_server.url, instance_id="x"), RoomObserver())
    await broker.start()
    try:
        for room in docs.values():
            await broker.attach(room)
        broker.publish_update("news-a", b"a1", b"origin-1")
        broker.publish_update("news-b", b"b1")
        broker.publish_update("news-a", b"a2", b"origin-2")
        with redis_server.client() as r:
            await eventually(lambda: r.xlen("codementor:room:news-a") == 2, timeout=5.0)
            a = [fields for _, fields in r.xrange("codementor:room:news-a")]
            b = [fields for _, fields in r.xrange("codementor:room:news-b")]
            news = [fields for _, fields in r.xrange("codementor:news")]
        assert a == [
            {b"u": b"a1", b"src": b"x", b"o": b"origin-1"},
            {b"u": b"a2", b"src": b"x", b"o": b"origin-2"},
        ]
        assert b == [{b"u": b"b1", b"src": b"x"}]
        assert [n[b"src"] for n in news] == [b"x"] * len(news)
        assert {room for n in news for room in n[b"r"].decode().split()} == set(docs)
    finally:
        await broker.close()


async def test_publisher_and_reader_survive_an_unexpected_error(redis_server: RedisProcess) -> None:
    """Before, only connection errors were caught: any other error ended the publishing
    (or reading, or awareness listening) task for good and silently, and the instances
    drifted apart."""
    name = "hiccup"
    doc: Doc[Any] = Doc()
    text = doc.get("code", type=Text)
    received: list[bytes] = []
    presence: list[bytes] = []
    room = FakeRoom(name, doc)
    room.apply_remote_update = lambda update, origin=None: received.append(update)  # type: ignore[method-assign]
    room.apply_remote_awareness = lambda payload, *_: presence.append(payload)  # type: ignore[method-assign]
    broker = RedisBroker(RedisSettings(url=redis_server.url, instance_id="x"), RoomObserver())
    publish = Hiccup(broker._publish_some)
    broker._publish_some = publish  # type: ignore[method-assign]
    read = Hiccup(broker._reader_redis.xread)
    broker._reader_redis.xread = read  # type: ignore[method-assign]
    listen = Hiccup(broker._pubsub.get_message)
    broker._pubsub.get_message = listen  # type: ignore[method-assign]
    await broker.start()
    try:
        await broker.attach(room)
        before = doc.get_state()
        text.insert(0, "kept")
        broker.publish_update(name, doc.get_update(before))
        with redis_server.client() as r:
            await eventually(lambda: r.xlen(f"codementor:room:{name}") == 1, timeout=5.0)
            # Another instance's entry: the reader, past its own error, must deliver it.
            r.xadd(f"codementor:room:{name}", {"u": b"from-y", "src": b"y"})
        await eventually(lambda: received == [b"from-y"], timeout=5.0)
        # And the awareness listener, past its own error, delivers another's presence.
        with redis_server.client() as r:

            def announced() -> bool:
                # Published again until seen: pub/sub keeps nothing for a late listener.
                r.publish(f"codementor:aw:{name}", b"y\x001\x00cursor")
                return bool(presence)

            await eventually(announced, timeout=5.0, interval=0.05)
        assert set(presence) == {b"cursor"}
        assert publish.raised and read.raised and listen.raised
    finally:
        await broker.close()


OPEN_TOGETHER = """
import multiprocessing, sys
from pathlib import Path
from server.app import open_store
from server.settings import Settings

def open_it(data_dir, barrier, failures):
    barrier.wait()
    try:
        open_store(Settings(data_dir=Path(data_dir))).close()
    except Exception as exc:
        failures.put(repr(exc))

if __name__ == "__main__":
    ctx = multiprocessing.get_context("fork")  # a fresh process: no threads yet
    failures = ctx.Queue()
    for i in range(int(sys.argv[2])):
        barrier = ctx.Barrier(4)
        procs = [ctx.Process(target=open_it, args=(f"{sys.argv[1]}/{i}", barrier, failures))
                 for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    failures.put(None)
    found = list(iter(failures.get, None))
    print(len(found), sorted(set(found))[:3])
"""


def test_instances_creating_one_sqlite_file_together_all_start(tmp_path: Path) -> None:
    """Instances (or ``--workers``) that start at the same moment on a fresh data
    directory all open the one SQLite file: none may fail with "database is locked".
    Each round, 4 processes open the store of a fresh directory at once, as each
    server's lifespan does (``open_store``)."""
    result = subprocess.run(
        [sys.executable, "-c", OPEN_TOGETHER, str(tmp_path), "60"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    failed, _, sample = result.stdout.strip().partition(" ")
    assert failed == "0", f"{failed} of 240 openings failed: {sample}"
