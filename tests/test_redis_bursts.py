"""The Redis broker under bursts: hundreds of rooms loading at once, a cursor storm.

redis-py's asyncio pool refuses a command past 100 connections ("Too many connections")
instead of waiting; the broker used one pooled connection per attaching room and per
awareness message, so a burst lost presence and made rooms attach without Redis. These
drive the real broker against a real ``redis-server``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from rooms.observer import RoomObserver
from rooms.redis_broker import AWARENESS_QUEUE, POOL_CONNECTIONS, RedisBroker, RedisSettings
from tests.harness import FakeClient, redis_broker, started
from tests.redisproc import RedisProcess
from tests.support import eventually

pytestmark = pytest.mark.anyio

ROOMS = 200
MESSAGES = 2_000


async def test_rooms_loading_at_once_all_attach_through_redis(
    tmp_path: Path, redis_server: RedisProcess
) -> None:
    # A generous timeout: waiting for a pooled connection on a loaded CI machine is slow,
    # and what is under test is that callers wait instead of failing at once.
    broker = RedisBroker(RedisSettings(redis_server.url, "one", timeout=15.0), RoomObserver())
    with capture_logs() as logs:
        async with started(tmp_path, broker) as registry:
            clients = await asyncio.gather(
                *(FakeClient().join(registry, f"burst-{i}") for i in range(ROOMS))
            )
            assert len(clients) == ROOMS
            watcher = aioredis.Redis.from_url(redis_server.url)
            try:
                listed = await watcher.client_list()
            finally:
                await watcher.aclose()
    failures = [e for e in logs if e["event"] in ("attach_without_redis", "publish_failed")]
    assert failures == [], failures[:3]
    # The broker's command pool, its reader, its pub/sub and the watcher: bounded.
    assert len(listed) <= POOL_CONNECTIONS + 4, len(listed)


async def test_a_cursor_storm_reaches_redis_whole(
    tmp_path: Path, redis_server: RedisProcess
) -> None:
    assert MESSAGES < AWARENESS_QUEUE
    listener = aioredis.Redis.from_url(redis_server.url)
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("codementor:aw:storm")
    received = 0

    async def count() -> None:
        nonlocal received
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is not None:
                received += 1

    counter = asyncio.create_task(count())
    try:
        broker = redis_broker(redis_server.url, "one")
        async with started(tmp_path, broker) as registry:
            await FakeClient().join(registry, "storm")
            await eventually(lambda: broker.connected, 5, "the broker connected")
            for i in range(MESSAGES):
                broker.publish_awareness("storm", b"state %d" % i, on_stage=False)
            await eventually(lambda: received >= MESSAGES, 10, f"{MESSAGES} messages")
        assert received == MESSAGES
    finally:
        counter.cancel()
        await pubsub.aclose()
        await listener.aclose()


async def test_closing_the_broker_closes_its_connections(redis_server: RedisProcess) -> None:
    """A pool handed to a client is not closed with it unless the client owns it: every
    socket left open would surface later as another test's ResourceWarning."""
    broker = redis_broker(redis_server.url, "one")
    await broker.start()
    await broker.check()
    pool = broker._redis.connection_pool
    await broker.close()
    connections = [*pool._available_connections, *pool._in_use_connections]
    assert connections, "the check used a pooled connection"
    assert not [c for c in connections if c.is_connected]
