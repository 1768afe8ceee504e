"""Multi-instance sync through Redis (redis-py's asyncio client).

- Updates: one Redis Stream per room, ``codementor:room:{name}``, entries
  ``{u: update, src: instance, o: origin}`` (who sent the update and when, for the
  other instances' history; absent from re-seeds). Every instance reads every stream of the rooms
  it has loaded from the last id it saw (``XREAD``), so after a reconnect it
  resumes exactly where it left off; its own entries only move its position.
- News: ``codementor:news`` (cluster: one per shard), one entry ``{src, r}`` per publish
  batch naming the rooms it wrote to. Each of the reader's ``XREAD``s names the news stream
  and the streams other instances' last news named, instead of every loaded room's stream
  (whose packing and parsing cost more than the few entries it brought, and Redis more:
  bench/README, "Across instances"). News is a hint, never the record: every
  ``SWEEP_SECONDS`` (and after every reconnect) the reader reads every loaded room's
  stream, so an entry whose news was lost (trimmed, a publisher killed mid-batch, an
  entry written by other means) is read all the same, at most that much later.
- Awareness: pub/sub on ``codementor:aw:{name}`` (ephemeral; dropped while Redis
  is down, since clients renew their state every 15 s).
- Compaction lease: ``SET codementor:lease:{name} <instance> NX PX``; the holder
  writes the snapshot, then trims the stream below what the snapshot holds,
  keeping a safety window for instances that are loading.
- Faults. Publishing keeps a bounded queue; past its bound, a room's queued
  updates are replaced by one full-state update when Redis returns (everything
  is in this instance's store and document anyway). Redis holds an epoch key,
  made by whichever instance finds it missing; on every reconnect the reader
  compares it with the one it knew. A different epoch (or a stream that went
  back in time) means Redis lost its data: every room is read again from the
  start and re-seeded with this instance's full state, so all converge again.
  Stream ids cannot tell on their own: they are timestamps, so the first entry
  written to a wiped Redis already looks newer than anything read before.

Redis Cluster (``RedisSettings.cluster``; ``rooms.redis_keys`` has the key names and why):

- Keys carry one of 16 shard hash tags, so a room's stream, channel and lease share a
  slot, and one reader task per shard with loaded rooms makes one blocking XREAD naming
  that shard's rooms, sent to the master that owns the slot (named, so redis-py does not
  ask the server for XREAD's keys first; a MOVED reply is still followed). Single Redis
  is one group: one reader, one XREAD naming every room, the names above, as before.
- The epoch is per shard, in the shard's slot: a master restarted empty (no replica to
  take over) loses exactly the epochs of the shards it held, and those are re-read and
  re-seeded; the other shards are untouched.
- Failover: replication is asynchronous, so a promoted replica can lack XADDs the old
  master acknowledged, and neither the store ("every instance stores what it received")
  nor the clients (they resend only on reconnect) would bring them back to the other
  instances. So a reader that finds its shard served by another master re-seeds that
  shard's rooms with its full state; the instance that published a lost update has it
  in its document. ``WAIT 1`` after each batch could close the window too, but at a
  replica round trip per batch and node, on every publish, and with the replica down
  it can only time out; the re-seed costs nothing until a failover.
  ``tests/test_redis_cluster.py`` cuts a replica off, kills its master, and checks that
  acknowledged entries were lost and no edit was (with the re-seed removed, edits were
  lost in 2 of 5 runs).
- Awareness uses classic PUBLISH/SUBSCRIBE: any node takes a PUBLISH and the cluster bus
  carries it to every node, so one subscriber connection to any node hears every room.
  Sharded pub/sub (SPUBLISH, Redis 7.0+, which Debian's 7.0 has) keeps a message inside
  its shard, but needs a subscriber connection per master, and redis-py's
  ``get_sharded_message`` polls them in turn, splitting its timeout, so a cursor
  would wait out other nodes' slices; worth it when bus traffic matters. After an error
  the subscriber reconnects through a new connection (its node may be gone for good);
  a shard reader never waits for it (a failed subscribe only flags the awareness loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
import structlog
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisError

from rooms.broker import Broker, SyncedRoom
from rooms.observer import RoomObserver
from rooms.redis_keys import DELETED_CHANNEL, RedisKeys

log = structlog.get_logger("codementor.redis")
tracer = trace.get_tracer(__name__)

# Single-Redis names (``rooms.redis_keys`` has both modes'), kept for the tools that read them.
STREAM = "codementor:room:{}"
READ_BLOCK_MS = 500
CHECK_TIMEOUT = 1.0  # readiness must notice a stalled Redis quickly
# An idle instance (no room to read, nothing to publish) pings this often, so that
# codementor_redis_connected is true of every process, scraped or not (alerts read it).
PING_SECONDS = 5.0
READ_COUNT = 1000
LEASE_MS = 30_000
TRIM_SAFETY_MS = 60_000
MAX_BACKOFF = 5.0
PUBLISH_BATCH = 500
# The publisher and the reader each wait this long after waking, so one publish or one
# XREAD carries a few milliseconds of updates instead of one: an XREAD names every
# loaded room's stream, and its encoding cost more than the updates it brought
# (the multi-instance pair row of bench/README, "Things tried", has the numbers).
COALESCE_SECONDS = 0.002
# A publish batch is one script call per read group: its room entries, then the group's
# news entry naming the rooms (after them, so news never comes before what it
# announces). A pipeline of XADDs cost redis-py more Python per update (building,
# packing and parsing each command) than everything else the publisher does
# (bench/README, "Across instances"). KEYS: the entries' streams, then the news stream;
# ARGV: src, the news's rooms, news MAXLEN, then per entry its update and origin ('' for
# none). Every key of a group shares a slot in a cluster (``rooms.redis_keys``).
PUBLISH_SCRIPT = """
local src, rooms, maxlen = ARGV[1], ARGV[2], ARGV[3]
local entries = #KEYS - 1
for i = 1, entries do
  local update, origin = ARGV[2 + 2 * i], ARGV[3 + 2 * i]
  if origin == '' then
    redis.call('XADD', KEYS[i], '*', 'u', update, 'src', src)
  else
    redis.call('XADD', KEYS[i], '*', 'u', update, 'src', src, 'o', origin)
  end
end
redis.call('XADD', KEYS[entries + 1], 'MAXLEN', '~', maxlen, '*', 'src', src, 'r', rooms)
return entries
"""
# News entries kept (approximately): a reader further behind than that misses some and
# catches up at its next sweep.
NEWS_MAXLEN = 2000
SWEEP_SECONDS = 1.0  # every loaded room's stream is read at least this often
# Commands of one instance share this many connections (single Redis); more callers at
# once (hundreds of rooms loading together) wait their turn for up to the timeout
# instead of failing with "Too many connections", redis-py's asyncio pool's answer.
POOL_CONNECTIONS = 32
# Awareness waiting to be published: ephemeral, renewed by clients every 15 s, so past
# this the oldest are dropped (and counted) rather than queued without bound.
AWARENESS_QUEUE = 10_000
CONNECTION_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
DELETED_BYTES = DELETED_CHANNEL.encode()
DELETE_ATTEMPTS = 3  # a room's keys: tries, with backoff, before they are left
# Deletes a lease only while it is still this instance's (a lease that expired and
# another instance took must not be released by the first).
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class ShardMoved(RedisError):
    """A cluster read group is served by another master than before."""


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str
    instance_id: str
    max_buffered_updates: int = 10_000
    max_buffered_bytes: int = 64 * 1024 * 1024
    timeout: float = 5.0
    cluster: bool = False  # a Redis Cluster: keys and reads by shard (rooms.redis_keys)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


def _id_less(a: str, b: str) -> bool:
    ams, _, aseq = a.partition("-")
    bms, _, bseq = b.partition("-")
    return (int(ams), int(aseq or 0)) < (int(bms), int(bseq or 0))


class RedisBroker(Broker):
    enabled = True

    def __init__(self, settings: RedisSettings, observer: RoomObserver) -> None:
        self.settings = settings
        self.instance_id = settings.instance_id
        self._me = settings.instance_id.encode()
        self._observer = observer
        self._keys = RedisKeys(cluster=settings.cluster)
        common: dict[str, Any] = {
            "socket_connect_timeout": settings.timeout,
            "health_check_interval": 10,
        }
        # The reader blocks in XREAD: its socket timeout must outlast the block.
        read_timeout = settings.timeout + READ_BLOCK_MS / 1000
        self._cluster: RedisCluster | None = None
        if settings.cluster:
            # One client: its per-node pools give every shard reader its own
            # connection, and one view of the topology says which master serves a shard.
            self._cluster = RedisCluster.from_url(
                settings.url, socket_timeout=read_timeout, **common
            )
            # Not a subclass of Redis, but the same commands: typed as one where shared.
            self._redis = self._reader_redis = cast(aioredis.Redis, self._cluster)
        else:
            pool = aioredis.BlockingConnectionPool.from_url(
                settings.url,
                max_connections=POOL_CONNECTIONS,
                timeout=settings.timeout,
                socket_timeout=settings.timeout,
                **common,
            )
            # from_pool: closing the client closes the pool (a pool passed in is not).
            self._redis = aioredis.Redis.from_pool(pool)
            self._reader_redis = aioredis.Redis.from_url(
                settings.url, socket_timeout=read_timeout, **common
            )
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._publish_script = self._redis.register_script(PUBLISH_SCRIPT)
        self._rooms: dict[str, SyncedRoom] = {}
        self._groups: dict[int, dict[str, None]] = {}  # read group -> its rooms, in order
        self._positions: dict[str, str] = {}
        self._outbox: deque[tuple[str, bytes, bytes | None]] = deque()
        self._outbox_bytes = 0
        self._reseed: set[str] = set()
        self._epochs: dict[int, bytes] = {}  # read group -> the epoch it last saw
        self._nodes: dict[int, str] = {}  # cluster: read group -> the master that served it
        self._readers: dict[int, asyncio.Task[None]] = {}
        self._unread: dict[int, set[str]] = {}  # read group -> rooms to read before news
        self._resubscribe_wanted = False  # cluster: a subscribe failed, start afresh
        self._wakeup = asyncio.Event()
        self._presence: deque[tuple[str, bytes]] = deque(maxlen=AWARENESS_QUEUE)
        self._presence_wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._inflight: set[asyncio.Task[None]] = set()  # fire-and-forget, kept referenced
        self.connected = False

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._publish_loop(), name="redis-publish"),
            asyncio.create_task(self._awareness_loop(), name="redis-awareness"),
            asyncio.create_task(self._presence_loop(), name="redis-presence"),
            asyncio.create_task(self._ping_loop(), name="redis-ping"),
        ]

    async def close(self) -> None:
        self._closing = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.timeout):
                while self._outbox and self.connected:
                    self._wakeup.set()
                    await asyncio.sleep(0.01)
        tasks = [*self._tasks, *self._readers.values()]
        for task in tasks:
            task.cancel()
        # redis-py can turn the cancellation of a blocked XREAD into a timeout error,
        # which the read loop would retry: it stops on ``_closing`` instead. The
        # connections are closed under it, and the wait is bounded all the same.
        for client in (self._pubsub, self._redis, self._reader_redis):
            with contextlib.suppress(Exception):
                await client.aclose()
        pending = await _settle(tasks, self.settings.timeout)
        if pending:
            log.warning("redis_tasks_not_stopped", tasks=[t.get_name() for t in pending])
        # A task that was between commands when cancelled may have taken a connection
        # after the pools were closed above: close them again once the tasks are done.
        for client in (self._pubsub, self._redis, self._reader_redis):
            with contextlib.suppress(Exception):
                await client.aclose()

    async def check(self) -> None:
        try:
            async with asyncio.timeout(min(CHECK_TIMEOUT, self.settings.timeout)):
                await self._redis.ping()
        except BaseException:
            self._set_connected(False)
            raise
        # An idle instance (no room, nothing published) learns it is connected here:
        # codementor_redis_connected must not read 0 while Redis answers.
        self._set_connected(True)

    async def _ping_loop(self) -> None:
        # Stops on ``_closing``, not only on cancellation: redis-py can turn a cancelled
        # command into a connection error, which would otherwise be swallowed here.
        while not self._closing:
            with contextlib.suppress(Exception):  # check() has recorded the outcome
                await self.check()
            if self._closing:
                return
            await asyncio.sleep(PING_SECONDS)

    # -- rooms ---------------------------------------------------------------

    async def attach(self, room: SyncedRoom) -> None:
        """Apply the room's whole stream (what is not yet in the store is there), then
        follow it from the last entry read. Redis down: follow from the start, the
        reader catches up when it returns."""
        name = room.name
        position = "0-0"
        try:
            async with asyncio.timeout(self.settings.timeout * 4):
                position = await self._catch_up(room, position)
        except CONNECTION_ERRORS:
            log.warning("attach_without_redis", room=name)
        self._rooms[name] = room
        self._positions[name] = position
        group = self._keys.group(name)
        self._groups.setdefault(group, {})[name] = None
        # News about it may have gone by while it caught up: read it once without news.
        self._unread.setdefault(group, set()).add(name)
        reader = self._readers.get(group)
        if (reader is None or reader.done()) and not self._closing:
            # A reader stops when its group empties (checked with no await in between).
            self._readers[group] = asyncio.create_task(
                self._read_loop(group), name=f"redis-read-{group}"
            )
        if self._cluster is not None:
            await self._subscribe([self._keys.awareness(name)])
            return
        with contextlib.suppress(*CONNECTION_ERRORS):
            await self._pubsub.subscribe(self._keys.awareness(name))

    async def _catch_up(self, room: SyncedRoom, position: str) -> str:
        key = self._keys.stream(room.name)
        while True:
            entries: Any = await self._redis.xrange(key, min=f"({position}", count=READ_COUNT)
            if not entries:
                return position
            for entry_id, fields in entries:
                position = _text(entry_id)
                room.apply_remote_update(fields[b"u"], fields.get(b"o"))

    def detach(self, room: SyncedRoom) -> None:
        self._rooms.pop(room.name, None)
        self._positions.pop(room.name, None)
        self._reseed.discard(room.name)
        group = self._groups.get(self._keys.group(room.name))
        if group is not None:
            group.pop(room.name, None)
        self._unread.get(self._keys.group(room.name), set()).discard(room.name)
        channel = self._keys.awareness(room.name)

        async def unsubscribe() -> None:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await self._pubsub.unsubscribe(channel)

        self._spawn(unsubscribe())

    def position(self, room: str) -> str | None:
        return self._positions.get(room)

    # -- publishing ----------------------------------------------------------

    def publish_update(self, room: str, update: bytes, origin: bytes | None = None) -> None:
        if room in self._reseed:
            return  # the full state will be published; it covers this update
        settings = self.settings
        if (
            len(self._outbox) >= settings.max_buffered_updates
            or self._outbox_bytes + len(update) > settings.max_buffered_bytes
        ):
            self._fold_into_reseed(room)
            return
        self._outbox.append((room, update, origin))
        self._outbox_bytes += len(update)
        self._report_backlog()
        self._wakeup.set()

    def _fold_into_reseed(self, room: str) -> None:
        """The queue is full: drop the room's queued updates; one full-state update
        replaces them (the document holds every one of them)."""
        kept = deque(item for item in self._outbox if item[0] != room)
        self._outbox_bytes = sum(len(u) for _, u, _ in kept)
        self._outbox = kept
        self._reseed.add(room)
        self._report_backlog()
        self._wakeup.set()

    def _report_backlog(self) -> None:
        # A pending re-seed stands for updates not yet published too.
        self._observer.buffered_updates(len(self._outbox) + len(self._reseed))

    def publish_awareness(self, room: str, payload: bytes, on_stage: bool) -> None:
        if not self.connected:
            return
        message = self._me + (b"\x001\x00" if on_stage else b"\x000\x00") + payload
        if len(self._presence) == AWARENESS_QUEUE:
            self._observer.awareness_dropped()
        self._presence.append((self._keys.awareness(room), message))
        self._presence_wakeup.set()

    async def _presence_loop(self) -> None:
        """Publish queued awareness: one task and one connection for all of it (a
        task and a pooled connection per message ran the pool dry in a cursor storm).
        A single Redis takes each wake-up's messages in one pipeline; a cluster
        client routes them one by one (PUBLISH names no key a pipeline could route)."""
        while True:
            await self._presence_wakeup.wait()
            self._presence_wakeup.clear()
            while self._presence:
                batch = [
                    self._presence.popleft() for _ in range(min(PUBLISH_BATCH, len(self._presence)))
                ]
                try:
                    async with asyncio.timeout(self.settings.timeout):
                        if self._cluster is not None:
                            for channel, message in batch:
                                await self._redis.publish(channel, message)
                        else:
                            async with self._redis.pipeline(transaction=False) as pipe:
                                for channel, message in batch:
                                    pipe.publish(channel, message)
                                await pipe.execute()
                except CONNECTION_ERRORS as exc:
                    # Ephemeral: dropped, as while Redis is down; clients renew it.
                    log.warning("awareness_publish_failed", error=str(exc), dropped=len(batch))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _publish_loop(self) -> None:
        delay = 0.05
        while True:
            await self._wakeup.wait()
            await asyncio.sleep(COALESCE_SECONDS)
            self._wakeup.clear()
            while self._outbox or self._reseed:
                try:
                    await self._publish_some()
                except Exception as exc:
                    # Anything else too (redis-py can raise other errors on a connection
                    # cut mid-reply): a publisher that died would stop this instance's
                    # updates reaching the others, silently and for good.
                    self._set_connected(False)
                    self._observer.publish_failed()
                    if isinstance(exc, CONNECTION_ERRORS):
                        log.warning("publish_failed", error=str(exc), queued=len(self._outbox))
                    else:
                        log.exception("publish_failed", queued=len(self._outbox))
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_BACKOFF)
                    continue
                delay = 0.05
                self._set_connected(True)

    async def _publish_some(self) -> None:
        """Publish a batch. What it sends leaves the queue first (and full states are
        taken now), so updates queued, folded or re-seeded meanwhile are not touched;
        on failure the batch goes back to the front."""
        batch = [self._outbox.popleft() for _ in range(min(PUBLISH_BATCH, len(self._outbox)))]
        self._outbox_bytes -= sum(len(u) for _, u, _ in batch)
        reseed = {r: self._rooms[r].doc.get_update() for r in self._reseed if r in self._rooms}
        self._reseed.clear()
        # One span per batch, never per update; a trace of its own (Context()): the
        # publisher serves every room, whatever started its task.
        attributes: dict[str, AttributeValue] = {
            "db.system.name": "redis",
            "db.operation.name": "EVALSHA",
            "codementor.updates": len(batch),
            "codementor.reseeds": len(reseed),
        }
        span = tracer.start_span(
            "redis.publish_batch", Context(), kind=SpanKind.CLIENT, attributes=attributes
        )
        try:
            calls = self._publish_calls(batch, reseed)
            async with asyncio.timeout(self.settings.timeout):
                if len(calls) == 1:
                    await self._publish_script(*calls[0], client=self._redis)
                else:  # a cluster: one call per shard, to the masters that own them
                    await asyncio.gather(
                        *(self._publish_script(*call, client=self._redis) for call in calls)
                    )
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.end()
            self._reseed.update(reseed)
            for room, update, origin in reversed(batch):
                if room not in self._reseed:  # a re-seed covers the room's updates
                    self._outbox.appendleft((room, update, origin))
                    self._outbox_bytes += len(update)
            self._report_backlog()
            raise
        span.end()
        self._report_backlog()

    def _publish_calls(
        self, batch: list[tuple[str, bytes, bytes | None]], reseed: dict[str, bytes]
    ) -> list[tuple[list[str], list[bytes | str | int]]]:
        """``PUBLISH_SCRIPT``'s keys and arguments for a batch, one call per read group,
        each group's entries in the batch's order."""
        entries: dict[int, tuple[list[str], list[bytes | str | int], set[str]]] = {}
        items = [*batch, *((room, full, None) for room, full in reseed.items())]
        for room, update, origin in items:
            group = self._keys.group(room)
            call = entries.get(group)
            if call is None:
                call = entries[group] = ([], [self._me, "", NEWS_MAXLEN], set())
            call[0].append(self._keys.stream(room))
            call[1].extend((update, b"" if origin is None else origin))
            call[2].add(room)
        calls: list[tuple[list[str], list[bytes | str | int]]] = []
        for group, (keys, args, rooms) in entries.items():
            args[1] = " ".join(rooms)
            calls.append(([*keys, self._keys.news(group)], args))
        return calls

    # -- reading ---------------------------------------------------------------

    async def _read_loop(self, group: int) -> None:
        """Follow one read group's streams (``rooms.redis_keys``: single Redis, all
        rooms); ends when the group has no room left (``attach`` starts another)."""
        delay = 0.05
        recovering = True  # check for a wiped Redis on the first connection too
        news_key = self._keys.news(group)
        news = "0-0"  # the last news entry read
        swept = 0.0  # when every loaded room's stream was last read (monotonic)
        unread = self._unread.setdefault(group, set())
        while not self._closing:
            rooms = self._groups.get(group)
            if not rooms:
                self._readers.pop(group, None)
                return
            try:
                if recovering:
                    await self._recover(group)
                    news = await self._news_tail(news_key)
                    recovering = False
                    delay = 0.05
                    swept = 0.0  # then read every stream: what came meanwhile has no news
                if time.monotonic() - swept >= SWEEP_SECONDS:
                    swept = time.monotonic()
                    unread.update(rooms)
                # One XREAD: the news, and the streams of the rooms the last news named
                # (returning at once when they hold entries: steady typing costs one call).
                streams: dict[Any, Any] = {news_key: news}
                for name in unread:
                    if name in rooms:
                        streams[self._keys.stream(name)] = self._positions[name]
                unread.clear()
                response = await self._read(group, streams)
            except ShardMoved as exc:
                log.warning("read_failed", error=str(exc), group=group)
                recovering = True
                continue
            except Exception as exc:  # a reader that died would stop following others
                if self._closing:
                    return
                if not isinstance(exc, CONNECTION_ERRORS):
                    log.exception("read_failed")
                elif not recovering:
                    log.warning("read_failed", error=str(exc), group=group)
                self._set_connected(False)
                recovering = True  # and then every stream is read again
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            self._set_connected(True)
            news_bytes = news_key.encode()
            entries = [item for item in response or [] if item[0] != news_bytes]
            for key, news_entries in response or []:
                if key == news_bytes:
                    news = self._take_news(news_entries, unread)
            if entries:
                self._deliver_traced(entries, unread)
                await asyncio.sleep(COALESCE_SECONDS)

    async def _news_tail(self, key: str) -> str:
        """The id of the newest news entry ("0-0" when there is none): news is followed
        from there, after one read of every stream."""
        last: Any = await self._reader_redis.xrevrange(key, count=1)
        return _text(last[0][0]) if last else "0-0"

    def _take_news(self, entries: list[Any], unread: set[str]) -> str:
        """Mark the rooms other instances wrote to for the next read; the last id."""
        last = ""
        for entry_id, fields in entries:
            last = entry_id
            if fields.get(b"src") != self._me:
                unread.update(_text(fields.get(b"r", b"")).split())
        return _text(last)

    async def _read(self, group: int, streams: dict[Any, Any]) -> Any:
        """One blocking XREAD of a group's streams. On a cluster it goes to the master
        that owns the group's slot; a different master than last time (a failover, or
        the slot moved) raises ``ShardMoved``, so the group is recovered first."""
        if self._cluster is None:
            return await self._reader_redis.xread(streams, count=READ_COUNT, block=READ_BLOCK_MS)
        node = self._master(group)
        if self._nodes.get(group, node.name) != node.name:
            raise ShardMoved(f"group {group}: {self._nodes[group]} -> {node.name}")
        args = ("COUNT", READ_COUNT, "BLOCK", READ_BLOCK_MS, "STREAMS", *streams, *streams.values())
        # Named, not routed by the client: redis-py would ask the server for XREAD's
        # keys (COMMAND GETKEYS) before every read. A MOVED reply is still followed.
        return await self._cluster.execute_command("XREAD", *args, target_nodes=node)

    def _deliver_traced(self, entries: list[Any], unread: set[str]) -> None:
        """Deliver one XREAD's entries under one span (a trace of its own, as the
        publisher's): the blocking wait is not in it, nor is an XREAD that brought none."""
        attributes: dict[str, AttributeValue] = {
            "db.system.name": "redis",
            "db.operation.name": "XREAD",
            "codementor.streams": len(entries),
            "codementor.entries": sum(len(found) for _, found in entries),
        }
        with tracer.start_as_current_span(
            "redis.read_batch", Context(), kind=SpanKind.CONSUMER, attributes=attributes
        ):
            self._deliver(entries, unread)

    def _deliver(self, response: list[Any], unread: set[str]) -> None:
        now_ms = time.time() * 1000
        for key, entries in response:
            name = RedisKeys.room_of_stream(key)
            room = self._rooms.get(name)
            if room is None:
                continue
            if len(entries) >= READ_COUNT:
                unread.add(name)  # more after these: read on without waiting
            for entry_id, fields in entries:
                position = entry_id.decode()
                self._positions[name] = position
                if fields.get(b"src") != self._me:
                    room.apply_remote_update(fields[b"u"], fields.get(b"o"))
                    self._observer.stream_lag(max(0.0, (now_ms - _ms(position)) / 1000))

    def _master(self, group: int) -> ClusterNode:
        """The master that owns a group's slot, as the cluster client last saw it."""
        assert self._cluster is not None
        node = self._cluster.get_node_from_key(self._keys.epoch(group))
        if node is None:
            raise RedisError(f"no master serves read group {group}")
        return node

    async def _recover(self, group: int) -> None:
        """After (re)connecting: a new epoch, or a stream that vanished or went back in
        time, means Redis lost its data. Read from the start and re-seed with the full
        state. On a cluster, a group now served by another master (a replica promoted)
        is re-seeded too: an XADD the old master acknowledged may never have reached
        the replica, and the instance that sent it has it in its document."""
        key = self._keys.epoch(group)
        epoch: Any = await self._redis.get(key)
        if epoch is None:
            await self._redis.set(key, secrets.token_hex(8), nx=True)
            epoch = await self._redis.get(key)
        rooms = list(self._groups.get(group, ()))
        wiped = group in self._epochs and epoch != self._epochs[group]
        self._epochs[group] = epoch
        if wiped:
            log.warning("redis_lost_data", instance=self.instance_id, rooms=len(rooms), group=group)
            for name in rooms:
                log.warning("stream_lost", room=name, had=self._positions[name], reason="epoch")
                self._positions[name] = "0-0"
                self._reseed.add(name)
            self._wakeup.set()
        if self._cluster is not None:
            node = self._master(group).name
            if self._nodes.get(group, node) != node:
                log.warning("redis_shard_moved", group=group, was=self._nodes[group], now=node)
                self._reseed.update(rooms)
                self._wakeup.set()
            self._nodes[group] = node
        for name in rooms:
            position = self._positions.get(name, "0-0")
            try:
                info = await self._redis.xinfo_stream(self._keys.stream(name))
                last = info["last-generated-id"]
                last_id = last.decode() if isinstance(last, bytes) else str(last)
            except RedisError as exc:
                if "no such key" not in str(exc).lower():
                    raise
                last_id = "0-0"
            if _id_less(last_id, position):
                log.warning("stream_lost", room=name, had=position, redis_has=last_id)
                self._positions[name] = "0-0"
                self._reseed.add(name)
                self._wakeup.set()
        # Awareness subscriptions do not survive a reconnect of the pub/sub connection.
        channels = [self._keys.awareness(name) for name in rooms]
        if channels and self._cluster is None:
            await self._pubsub.subscribe(*channels)
        elif channels:
            await self._subscribe(channels)

    async def _subscribe(self, channels: list[str]) -> None:
        """Cluster: subscribe without holding up the caller (a shard reader, an attach)
        on the pub/sub connection's node, which may be down while the shard's own
        master is up; the awareness loop then subscribes every room again through a
        new connection."""
        try:
            async with asyncio.timeout(self.settings.timeout):
                await self._pubsub.subscribe(*channels, DELETED_CHANNEL)
        except CONNECTION_ERRORS:
            self._resubscribe_wanted = True

    async def _awareness_loop(self) -> None:
        delay = 0.05
        broken = False  # cluster: subscribe again through a new connection first
        deletions = False  # subscribed to the room deletions' channel
        while True:
            try:
                if broken or self._resubscribe_wanted:
                    self._resubscribe_wanted = False
                    await self._resubscribe()
                    broken = False
                    deletions = True
                # A cluster's pub/sub connection goes to the node of the first channel
                # subscribed: the first room's (``_subscribe`` adds this channel after it).
                if not deletions and not self._keys.cluster:
                    async with asyncio.timeout(self.settings.timeout):
                        await self._pubsub.subscribe(DELETED_CHANNEL)
                    deletions = True
                if not self._pubsub.subscribed:
                    await asyncio.sleep(0.1)
                    continue
                message = await self._pubsub.get_message(timeout=1.0)
            except Exception as exc:  # keep listening whatever went wrong
                if self._closing:  # a cancelled read that redis-py turned into an error
                    return
                if not isinstance(exc, CONNECTION_ERRORS):
                    log.exception("awareness_read_failed")
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
                broken = self._keys.cluster
                continue
            delay = 0.05
            if message is None or message.get("type") != "message":
                continue
            if message["channel"] == DELETED_BYTES:
                self._deliver_deletion(message["data"])
                continue
            self._deliver_awareness(message["channel"], message["data"])

    async def _resubscribe(self) -> None:
        """Cluster: the node the pub/sub connection was on may be gone for good (failed
        over): subscribe again through a new one, on the channels' current master."""
        old, self._pubsub = self._pubsub, self._redis.pubsub(ignore_subscribe_messages=True)
        with contextlib.suppress(Exception):
            await old.aclose()
        channels = [*(self._keys.awareness(name) for name in self._rooms), DELETED_CHANNEL]
        async with asyncio.timeout(self.settings.timeout):
            await self._pubsub.subscribe(*channels)

    def _deliver_awareness(self, channel: bytes, data: bytes) -> None:
        src, _, rest = data.partition(b"\x00")
        stage, _, payload = rest.partition(b"\x00")
        if src == self._me:
            return
        name = self._keys.room_of_channel(channel)
        room = self._rooms.get(name)
        if room is not None:
            room.apply_remote_awareness(payload, src.decode(errors="replace"), stage == b"1")

    # -- deletion ----------------------------------------------------------------

    async def delete_room(self, room: str) -> bool:
        kept = deque(item for item in self._outbox if item[0] != room)
        self._outbox_bytes = sum(len(u) for _, u, _ in kept)
        self._outbox = kept
        self._reseed.discard(room)
        self._report_backlog()
        delay = 0.1
        for attempt in range(DELETE_ATTEMPTS):
            try:
                async with asyncio.timeout(self.settings.timeout):
                    for key in self._keys.room_keys(room):  # one by one: any cluster slot
                        await self._redis.delete(key)
                    await self._redis.publish(DELETED_CHANNEL, self._me + b"\0" + room.encode())
                return True
            except CONNECTION_ERRORS as exc:
                if attempt + 1 == DELETE_ATTEMPTS:
                    log.warning("room_keys_left", room=room, error=str(exc))
                    return False
                await asyncio.sleep(delay)
                delay *= 2
        return False  # pragma: no cover - the loop returns

    def _deliver_deletion(self, data: bytes) -> None:
        src, _, name = data.partition(b"\0")
        if src == self._me or not name or self.on_deleted is None:
            return
        self.on_deleted(name.decode(errors="replace"))

    async def loaded_elsewhere(self, room: str) -> bool:
        """An instance subscribes to a room's awareness channel while it has the room
        loaded: any subscriber means it is open somewhere. A Redis Cluster counts only
        the node asked; Redis unreachable: assume it is (never delete on a guess)."""
        try:
            async with asyncio.timeout(self.settings.timeout):
                counts: Any = await self._redis.pubsub_numsub(self._keys.awareness(room))
        except CONNECTION_ERRORS:
            return True
        return any(int(count) > 0 for _, count in counts)

    async def acquire_named_lease(self, name: str, ttl: float) -> bool:
        key = self._keys.named_lease(name)
        try:
            async with asyncio.timeout(self.settings.timeout):
                if await self._redis.set(key, self._me, nx=True, px=int(ttl * 1000)):
                    self._observer.lease_acquired()
                    return True
                # Renewed only while still ours: compare and extend in one script.
                renewed = await self._redis.eval(RENEW_SCRIPT, 1, key, self._me, int(ttl * 1000))
                return bool(renewed)
        except CONNECTION_ERRORS:
            return False

    async def release_named_lease(self, name: str) -> None:
        with contextlib.suppress(*CONNECTION_ERRORS):
            async with asyncio.timeout(self.settings.timeout):
                await self._redis.eval(RELEASE_SCRIPT, 1, self._keys.named_lease(name), self._me)

    # -- compaction ------------------------------------------------------------

    async def acquire_lease(self, room: str) -> bool:
        key = self._keys.lease(room)
        try:
            async with asyncio.timeout(self.settings.timeout):
                if await self._redis.set(key, self._me, nx=True, px=LEASE_MS):
                    self._observer.lease_acquired()
                    return True
                if await self._redis.get(key) == self._me:
                    await self._redis.pexpire(key, LEASE_MS)
                    return True
        except CONNECTION_ERRORS:
            pass
        return False

    async def forget_before(self, room: str, mark: str | None) -> None:
        if mark is None or mark == "0-0":
            return
        minid = max(0, _ms(mark) - TRIM_SAFETY_MS)
        with contextlib.suppress(*CONNECTION_ERRORS):
            async with asyncio.timeout(self.settings.timeout):
                await self._redis.xtrim(self._keys.stream(room), minid=minid, approximate=False)

    def _set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            self._observer.broker_connected(connected)
            if connected:
                log.info("redis_connected", instance=self.instance_id)
                self._wakeup.set()


async def _settle(tasks: Iterable[asyncio.Task[None]], seconds: float) -> set[asyncio.Task[None]]:
    """Wait up to ``seconds`` for ``tasks`` to end; the ones still running. Their
    exceptions (a cancellation included) are theirs: the broker is closing."""
    tasks = set(tasks)
    if not tasks:
        return set()
    done, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in done:
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it as never retrieved
    return pending
