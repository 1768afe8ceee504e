"""The life of a room (issue 23): deleting a room (``DELETE /api/rooms/{room}``), the
retention sweep and its Redis lease, and the quotas on making rooms.

End to end against real servers (tests/serverproc.py), a real redis-server for the
multi-instance cases, and the real SQLite file read back after the server stopped;
the sweep in process (tests/harness.py) with a clock the test sets.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from crdt import schema
from rooms.redis_keys import RedisKeys
from rooms.registry import RoomDeleted
from rooms.sqlite_store import SQLiteStore
from rooms.store import RoomInfo
from server import retention
from server.metrics import Metrics
from server.retention import RetentionSweep
from server.settings import Settings, SettingsError, from_env
from tests.harness import STORE_FILE, FakeClient, redis_broker, started
from tests.multi import start_instances
from tests.rediscluster import RedisClusterProcess
from tests.redisproc import RedisProcess
from tests.serverproc import ServerProcess
from tests.support import SECRET, eventually, sign
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

ADMIN = secrets.token_hex(16)
Factory = Callable[..., ServerProcess]
DB = "codementor.sqlite3"


def secured(factory: Factory, **env: str) -> ServerProcess:
    return factory(CODEMENTOR_SECRET=SECRET, CODEMENTOR_ADMIN_TOKEN=ADMIN, **env)


def call(server: ServerProcess, method: str, path: str, token: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, server.http_url + path, headers=headers, timeout=10)


def post(server: ServerProcess, path: str, body: Any) -> httpx.Response:
    return httpx.post(server.http_url + path, json=body, timeout=10)


def create(server: ServerProcess, token: str | None = ADMIN, **body: Any) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(server.http_url + "/api/rooms", json=body, headers=headers, timeout=10)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def rows_of(db: Path, room: str) -> dict[str, int]:
    """Every row of every table that names ``room`` (tables looked up, not listed)."""
    found: dict[str, int] = {}
    conn = sqlite3.connect(db)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            columns = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
            column = "room" if "room" in columns else "name" if "name" in columns else None
            if column:
                (n,) = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", (room,))
                if n[0]:
                    found[table] = n[0]
    finally:
        conn.close()
    return found


async def refused(url: str) -> tuple[int | None, str | None]:
    """Connect and wait for the server to close: its code and reason."""
    async with websockets.connect(url) as connection:
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(10):
                while True:
                    await connection.recv()
        return connection.close_code, connection.close_reason


async def typed(client: YClient, text: str) -> None:
    client.text.insert(len(client.text), text)
    await asyncio.sleep(0)


# -- DELETE -------------------------------------------------------------------------


async def test_owner_deletes_a_room_everywhere_it_was(server_factory: Factory) -> None:
    server = secured(server_factory)
    room = create(server)["room"]
    owner = sign(room, "owner", name="Olga", personal=True)
    editor = sign(room, "editor", name="Eddie", personal=True)
    client = await YClient(server.ws_url(room, f"token={editor}")).connect()
    await client.wait_synced()
    await typed(client, "print('kept until deleted')")
    await eventually(lambda: "updates" in rows_of(server.data_dir / DB, room))

    path = f"/api/rooms/{room}"
    assert call(server, "DELETE", path, None).status_code == 401
    assert call(server, "DELETE", path, "not-a-token").status_code == 401
    forbidden = call(server, "DELETE", path, editor)
    assert forbidden.status_code == 403 and "owner" in forbidden.json()["error"]
    assert call(server, "DELETE", "/api/rooms/no-such-room", owner).status_code == 403  # not its
    other = sign("no-such-room", "owner", personal=True)
    assert call(server, "DELETE", "/api/rooms/no-such-room", other).status_code == 404

    response = call(server, "DELETE", path, owner)
    assert response.status_code == 204 and response.content == b""
    assert await client.wait_closed() == 4404
    assert client.ws is not None and client.ws.close_reason == "room deleted"
    # An old link does not bring it back: refused for good, the name unknown.
    assert await refused(server.ws_url(room, f"token={editor}")) == (4404, "unknown room")
    assert call(server, "GET", path, owner).status_code == 404
    assert call(server, "DELETE", path, owner).status_code == 404
    assert 'codementor_rooms_deleted_total{reason="owner"} 1.0' in server.metrics()
    assert rows_of(server.data_dir / DB, room) == {}
    server.stop()  # a clean shutdown flushes every room: nothing of it comes back
    assert rows_of(server.data_dir / DB, room) == {}


async def test_the_admin_token_deletes_any_room(server_factory: Factory) -> None:
    server = secured(server_factory)
    room = create(server)["room"]
    assert call(server, "DELETE", f"/api/rooms/{room}", ADMIN).status_code == 204
    assert call(server, "DELETE", f"/api/rooms/{room}", ADMIN).status_code == 404
    assert call(server, "DELETE", "/api/rooms/bad%20name", ADMIN).status_code == 404
    assert 'codementor_rooms_deleted_total{reason="admin"} 1.0' in server.metrics()


async def test_edits_arriving_during_the_delete_are_not_written_back(
    server_factory: Factory,
) -> None:
    """The race: an editor types without pause while the owner deletes. What waited for
    a flush is dropped and nothing after it is stored: no row of the room survives,
    not even after the server's shutdown flush."""
    server = secured(server_factory, CODEMENTOR_DURABILITY_WINDOW_MS="20")
    room = create(server)["room"]
    owner = sign(room, "owner", name="Olga", personal=True)
    editors = [
        await YClient(server.ws_url(room, f"token={sign(room, 'editor', name=n)}")).connect()
        for n in ("Ann", "Ben")
    ]
    for client in editors:
        await client.wait_synced()
    stop = asyncio.Event()

    async def keep_typing(client: YClient) -> None:
        while not stop.is_set() and not client.closed.is_set():
            await typed(client, "x")
            await asyncio.sleep(0.002)

    typists = [asyncio.create_task(keep_typing(c)) for c in editors]
    await eventually(lambda: "updates" in rows_of(server.data_dir / DB, room))
    deleted = await asyncio.to_thread(call, server, "DELETE", f"/api/rooms/{room}", owner)
    assert deleted.status_code == 204
    for client in editors:
        assert await client.wait_closed() == 4404
    stop.set()
    await asyncio.gather(*typists)
    assert rows_of(server.data_dir / DB, room) == {}
    server.stop()
    assert rows_of(server.data_dir / DB, room) == {}


async def test_a_deleted_name_is_not_made_again_by_opening_it(server_factory: Factory) -> None:
    """Dev mode makes a room by opening its name; not a name deleted lately."""
    server = server_factory()
    created = create(server, token=None)
    room = created["room"]
    assert call(server, "DELETE", f"/api/rooms/{room}", created["owner_token"]).status_code == 204
    assert await refused(server.ws_url(room)) == (4404, "unknown room")
    joined = post(server, f"/api/rooms/{room}/join", {"name": "Z"})
    assert joined.status_code == 404
    fresh = await YClient(server.ws_url("never-used-name")).connect()  # still made
    await fresh.wait_synced()
    await fresh.close()


async def test_other_instances_close_their_peers_and_redis_forgets_the_room(
    server_factory: Factory, redis_server: RedisProcess, tmp_path: Path
) -> None:
    a, b = await start_instances(
        server_factory,
        redis_server.url,
        tmp_path / "shared",
        ["a", "b"],
        CODEMENTOR_SECRET=SECRET,
        CODEMENTOR_ADMIN_TOKEN=ADMIN,
    )
    room = create(a)["room"]
    editor = sign(room, "editor", name="Eddie")
    on_a = await YClient(a.ws_url(room, f"token={editor}")).connect()
    on_b = await YClient(b.ws_url(room, f"token={editor}")).connect()
    for client in (on_a, on_b):
        await client.wait_synced()
    await typed(on_b, "from b")
    redis = redis_server.client()
    stream = f"codementor:room:{room}"
    await eventually(lambda: redis.exists(stream) == 1)
    owner = sign(room, "owner", name="Olga")
    assert call(a, "DELETE", f"/api/rooms/{room}", owner).status_code == 204
    assert await on_a.wait_closed() == 4404
    assert await on_b.wait_closed() == 4404  # told through Redis
    assert redis.exists(stream, f"codementor:lease:{room}") == 0
    assert await refused(b.ws_url(room, f"token={editor}")) == (4404, "unknown room")
    for server in (a, b):
        server.stop()
    assert rows_of(tmp_path / "shared" / DB, room) == {}


async def test_a_redis_cluster_carries_the_deletion_to_every_instance(
    server_factory: Factory, tmp_path: Path
) -> None:
    """On a cluster the room's keys have shard-tagged names on the shard's master, and the
    notice (classic pub/sub) reaches an instance whose subscriber is on another node."""
    cluster = RedisClusterProcess(tmp_path / "cluster", masters=3, replicas=0).start()
    try:
        a, b = await start_instances(
            server_factory,
            cluster.url,
            tmp_path / "shared",
            ["a", "b"],
            CODEMENTOR_REDIS_CLUSTER="on",
            CODEMENTOR_SECRET=SECRET,
            CODEMENTOR_ADMIN_TOKEN=ADMIN,
        )
        room = create(a)["room"]
        editor = sign(room, "editor", name="Eddie")
        on_b = await YClient(b.ws_url(room, f"token={editor}")).connect()
        await on_b.wait_synced()
        await typed(on_b, "sharded")
        stream = RedisKeys(cluster=True).stream(room)
        with cluster.node_for(stream).client() as redis:
            await eventually(lambda: redis.exists(stream) == 1)
            owner = sign(room, "owner", name="Olga")
            assert call(a, "DELETE", f"/api/rooms/{room}", owner).status_code == 204
            assert await on_b.wait_closed() == 4404
            assert redis.exists(stream) == 0
    finally:
        cluster.stop()


# -- quotas -------------------------------------------------------------------------


# A remote client, as a proxy on this machine (trusted by default) names it.
REMOTE_ADDRESS = "203.0.113.7"
REMOTE = {"x-forwarded-for": REMOTE_ADDRESS}


async def refused_from(url: str, headers: dict[str, str]) -> int | None:
    async with websockets.connect(url, additional_headers=headers) as connection:
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(10):
                while True:
                    await connection.recv()
        return connection.close_code


async def test_rooms_per_address_bound_anonymous_creation(server_factory: Factory) -> None:
    server = server_factory(CODEMENTOR_ROOMS_PER_ADDRESS_PER_HOUR="2")

    def remote_post(path: str, address: str = REMOTE_ADDRESS, **kwargs: Any) -> httpx.Response:
        headers = {"x-forwarded-for": address}
        return httpx.post(server.http_url + path, headers=headers, timeout=10, **kwargs)

    made = [remote_post("/api/rooms", json={}) for _ in range(2)]
    assert [m.status_code for m in made] == [201, 201]
    over = remote_post("/api/rooms", json={})
    assert over.status_code == 429
    assert "per hour" in over.json()["error"] and int(over.headers["retry-after"]) > 0
    # Importing a room file makes a room too.
    mine = made[0].json()
    exported = call(server, "GET", f"/api/rooms/{mine['room']}/export", mine["owner_token"])
    assert exported.status_code == 200
    imported = remote_post("/api/rooms/import", params={"as": "copy"}, content=exported.content)
    assert imported.status_code == 429 and "retry-after" in imported.headers
    # Opening a new name makes a room too: refused the same way (1013: retried later).
    assert await refused_from(server.ws_url("a-new-name"), REMOTE) == 1013
    joined = remote_post("/api/rooms/another-new-name/join", json={"name": "Zed"})
    assert joined.status_code == 429 and "retry-after" in joined.headers
    assert server.metric("codementor_quota_refusals_total") == 4
    # Another address has its own rooms; this machine's own user is never limited.
    other = remote_post("/api/rooms", json={}, address="198.51.100.2")
    assert other.status_code == 201
    assert [create(server, token=None)["room"] != "" for _ in range(3)] == [True] * 3
    client = await YClient(server.ws_url("a-local-name")).connect()
    await client.wait_synced()
    await client.close()


async def test_rooms_per_user_bound_forks_and_a_delete_frees_one(server_factory: Factory) -> None:
    server = secured(server_factory, CODEMENTOR_ROOMS_PER_USER="2")
    lessons = [create(server, mode="broadcast")["room"] for _ in range(2)]
    student = {r: sign(r, "viewer", name="Stu", personal=True) for r in lessons}

    def fork(r: str) -> httpx.Response:
        return call(server, "POST", f"/api/rooms/{r}/fork", student[r])

    first, second = fork(lessons[0]), fork(lessons[1])
    assert first.status_code == second.status_code == 201
    over = fork(lessons[0])
    assert over.status_code == 429 and "you own 2 rooms" in over.json()["error"]
    mine = first.json()
    freed = call(server, "DELETE", f"/api/rooms/{mine['room']}", mine["owner_token"])
    assert freed.status_code == 204
    assert fork(lessons[0]).status_code == 201
    other = sign(lessons[0], "viewer", name="Someone", personal=True)
    assert call(server, "POST", f"/api/rooms/{lessons[0]}/fork", other).status_code == 201


async def test_forks_per_user_per_hour_count_every_room(server_factory: Factory) -> None:
    server = secured(server_factory, CODEMENTOR_USER_FORKS_PER_HOUR="2")
    lessons = [create(server, mode="broadcast")["room"] for _ in range(3)]
    statuses = []
    for room in lessons:
        token = sign(room, "viewer", name="Stu", personal=True)
        statuses.append(call(server, "POST", f"/api/rooms/{room}/fork", token))
    assert [r.status_code for r in statuses] == [201, 201, 429]
    assert 0 < int(statuses[2].headers["retry-after"]) <= 3600


# -- retention ------------------------------------------------------------------------


def seed(path: Path, rooms: dict[str, float]) -> None:
    store = SQLiteStore(path / STORE_FILE)
    try:
        for name, at in rooms.items():
            store.create_room(RoomInfo(name, created_at=at, updated_at=at))
    finally:
        store.close()


async def test_the_sweep_deletes_rooms_idle_too_long_and_keeps_the_rest(tmp_path: Path) -> None:
    now = 10_000_000.0
    seed(tmp_path, {"stale": now - 5000, "stale-open": now - 5000, "recent": now - 10})
    async with started(tmp_path) as registry:
        reader = await FakeClient(name="Ada").join(registry, "stale-open")
        sweep = RetentionSweep(registry, Metrics(), 1000.0, 3600.0, clock=lambda: now)
        assert await sweep.sweep() == ["stale"]
        assert await registry.room_info("stale") is None
        assert await registry.room_info("stale-open") is not None  # someone has it open
        assert await registry.room_info("recent") is not None
        reader.leave(registry)
        off = RetentionSweep(registry, Metrics(), 0.0, 3600.0, clock=lambda: now)
        assert await off.sweep() is None


async def test_a_server_with_retention_on_deletes_idle_rooms_itself(
    server_factory: Factory,
) -> None:
    """The sweep as the server runs it (0.00005 days is 4.3 s: time for the editor to
    connect first): a room nobody opens goes, one with a connected editor stays."""
    server = secured(
        server_factory,
        CODEMENTOR_ROOM_RETENTION_DAYS="0.00005",
        CODEMENTOR_RETENTION_SWEEP_SECONDS="0.2",
        CODEMENTOR_IDLE_UNLOAD_SECONDS="0.2",
    )
    idle, used = create(server)["room"], create(server)["room"]
    editor = sign(used, "editor", name="Eddie")
    client = await YClient(server.ws_url(used, f"token={editor}")).connect()
    await client.wait_synced()
    owner = sign(idle, "owner", name="Olga")

    def gone() -> bool:
        return call(server, "GET", f"/api/rooms/{idle}", owner).status_code == 404

    await eventually(gone, timeout=30.0, what="the idle room deleted", interval=0.25)
    assert not client.closed.is_set()
    assert call(server, "GET", f"/api/rooms/{used}", sign(used, "owner")).status_code == 200
    assert 'codementor_rooms_deleted_total{reason="retention"} 1.0' in server.metrics()
    events = [e for e in server.events() if e.get("event") == "room_deleted"]
    assert [(e["room"], e["reason"]) for e in events] == [(idle, "retention")]
    await client.close()


async def test_one_instance_sweeps_at_a_time(tmp_path: Path, redis_server: RedisProcess) -> None:
    now = 10_000_000.0
    seed(tmp_path, {"stale-1": now - 5000, "stale-2": now - 5000, "open-on-a": now - 5000})
    async with (
        started(tmp_path, redis_broker(redis_server.url, "a")) as a,
        started(tmp_path, redis_broker(redis_server.url, "b")) as b,
    ):
        client = await FakeClient(name="Ada").join(a, "open-on-a")
        sweep_a = RetentionSweep(a, Metrics(), 1000.0, 3600.0, clock=lambda: now)
        sweep_b = RetentionSweep(b, Metrics(), 1000.0, 3600.0, clock=lambda: now)
        assert await a.broker.acquire_named_lease("retention", 60.0)  # a is sweeping
        assert await sweep_b.sweep() is None  # b skips
        assert await b.room_info("stale-1") is not None
        assert sorted(await sweep_a.sweep() or []) == ["stale-1", "stale-2"]  # a renews it
        # Released when a was done: b may sweep now; the room a has open is kept.
        assert await sweep_b.sweep() == []
        assert await b.room_info("open-on-a") is not None
        client.leave(a)


async def test_whoever_still_holds_a_deleted_room_writes_nothing_back(
    tmp_path: Path, redis_server: RedisProcess
) -> None:
    """A run or the AI may finish into a room after it was deleted: that edit reaches
    neither the store nor Redis, even through the shutdown flush."""
    stream = RedisKeys().stream("held")
    async with started(tmp_path, redis_broker(redis_server.url, "a")) as registry:
        await registry.create_room(RoomInfo("held", created_at=1.0, updated_at=1.0))
        client = await FakeClient(name="Ada").join(registry, "held")
        client.type("abc")
        room = registry.rooms["held"]
        await eventually(lambda: redis_server.client().exists(stream) == 1)
        assert await registry.delete("held")
        assert client.peer.closed and client.peer.close_code == 4404
        room.edit(lambda doc: schema.code(doc).insert(0, "late "))  # a run that finished
        with pytest.raises(RoomDeleted):
            await registry.loaded("held")
    assert redis_server.client().exists(stream) == 0
    assert rows_of(tmp_path / STORE_FILE, "held") == {}


def test_bad_life_settings_are_refused() -> None:
    for bad in (
        {"room_retention_days": -1.0},
        {"retention_sweep_seconds": 0.0},
        {"rooms_per_user": -1},
        {"user_forks_per_hour": -5},
        {"rooms_per_address_per_hour": 0},
    ):
        with pytest.raises(SettingsError):
            Settings(**bad).validate()
    Settings(room_retention_days=90.0, rooms_per_user=0, user_forks_per_hour=0).validate()
    env = from_env({"CODEMENTOR_ROOM_RETENTION_DAYS": "90", "CODEMENTOR_ROOMS_PER_USER": "5"})
    assert (env.room_retention_days, env.rooms_per_user) == (90.0, 5)


async def test_a_sweep_renews_its_lease_per_batch_and_stops_once_it_lost_it(
    tmp_path: Path, redis_server: RedisProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of two: five stale rooms take three batches under one renewed lease. Had
    another instance taken the lease meanwhile (it ran out), the sweep stops."""
    monkeypatch.setattr(retention, "BATCH", 2)
    now = 10_000_000.0
    seed(tmp_path, {f"stale-{i}": now - 5000 + i for i in range(5)})
    lease = RedisKeys.named_lease(retention.LEASE_NAME)
    redis = redis_server.client()
    async with started(tmp_path, redis_broker(redis_server.url, "a")) as registry:
        sweep = RetentionSweep(registry, Metrics(), 1000.0, 3600.0, clock=lambda: now)
        assert await sweep.sweep() == [f"stale-{i}" for i in range(5)]
        assert redis.exists(lease) == 0  # released
        seed(tmp_path, {f"again-{i}": now - 5000 + i for i in range(5)})
        deleting = registry.delete

        async def delete_then_lose_the_lease(name: str) -> bool:
            redis.set(lease, "b")  # a's lease ran out and b took it
            return await deleting(name)

        monkeypatch.setattr(registry, "delete", delete_then_lose_the_lease)
        assert await sweep.sweep() == ["again-0", "again-1"]
        assert redis.get(lease) == b"b"  # not released: it is b's
