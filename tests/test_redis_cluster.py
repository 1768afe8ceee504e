"""Multi-instance mode on a real Redis Cluster (``CODEMENTOR_REDIS_CLUSTER=on``).

Three masters (with a replica each where a test kills one), started from Debian's
``redis-server`` by ``tests/rediscluster.py``; two of our servers on them. Rooms are
picked so their keys land on every master. Faults are real: SIGKILL of a master (its
replica takes over), a master restarted empty with no replica to take over.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis.crc import key_slot

from rooms.redis_keys import SHARD_TAGS, SHARDS, RedisKeys
from server.settings import Settings, SettingsError
from tests.multi import (
    Burst,
    close_all,
    connect_all,
    converge,
    doc_text,
    fresh_text,
    logs,
    missing,
    start_instances,
    stop_all,
    stored_doc,
    union_state,
)
from tests.rediscluster import ClusterNode, RedisClusterProcess, missing_binaries
from tests.serverproc import ServerProcess
from tests.support import eventually, wait_until
from tests.yclient import YClient

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(missing_binaries() is not None, reason=str(missing_binaries())),
]

Factory = Callable[..., ServerProcess]
CLUSTER_ENV = {"CODEMENTOR_REDIS_CLUSTER": "on"}
KEYS = RedisKeys(cluster=True)
CONVERGE_TIMEOUT = 30.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisClusterProcess]:
    """Three masters, a replica each."""
    proc = RedisClusterProcess(tmp_path / "cluster", masters=3, replicas=1).start()
    yield proc
    proc.stop()


@pytest.fixture
def bare_cluster(tmp_path: Path) -> Iterator[RedisClusterProcess]:
    """Three masters, no replica: a master that dies comes back with its slots, empty."""
    proc = RedisClusterProcess(tmp_path / "cluster", masters=3, replicas=0).start()
    yield proc
    proc.stop()


def rooms_on_every_master(cluster: RedisClusterProcess) -> list[str]:
    """One room name per master, in the order of ``cluster.masters_now()``."""
    masters = cluster.masters_now()
    found: dict[int, str] = {}
    for i in range(1000):
        name = f"room-{i}"
        node = cluster.node_for(KEYS.stream(name))
        found.setdefault(node.port, name)
        if len(found) == len(masters):
            return [found[m.port] for m in masters]
    raise AssertionError(f"no room names for every master: {found}")


async def check_stored(
    servers: list[ServerProcess], clients: dict[str, list[YClient]], data: Path
) -> None:
    """Clients closed and servers SIGTERMed: the store holds every edit of every room."""
    wants = {room: union_state(c.doc for c in cs) for room, cs in clients.items()}
    texts = {room: str(cs[0].text) for room, cs in clients.items()}
    await close_all(c for cs in clients.values() for c in cs)
    await stop_all(servers)
    for room, want in wants.items():
        stored = stored_doc(data, room)
        assert not missing(stored, want), (room, logs(servers))
        assert doc_text(stored) == texts[room]


async def awareness_crosses(clients: dict[str, list[YClient]], timeout: float = 20.0) -> None:
    """In every room, each of the two clients (one per server) sees the other's presence.
    Pub/sub keeps nothing for a listener that is not subscribed yet (after a failover),
    so the state is renewed until seen, as browsers renew it every 15 s."""
    for room, (ca, cb) in clients.items():
        for me, other in ((ca, cb), (cb, ca)):

            def seen(me: YClient = me, other: YClient = other) -> bool:
                state = other.awareness.get(me.doc.client_id)
                return state is not None and str(me.doc.client_id) in str(state)

            async def renewed(me: YClient = me, seen: Callable[[], bool] = seen) -> bool:
                await me.set_awareness({"user": {"name": f"client {me.doc.client_id}"}})
                try:
                    await eventually(seen, timeout=1.0)
                except AssertionError:
                    return False
                return True

            await eventually(renewed, timeout=timeout, what=f"awareness in {room}", interval=0)


def test_shard_tags_spread_over_the_slot_space() -> None:
    """Shard i's tag hashes into the i-th sixteenth of the slots, so masters owning equal
    contiguous ranges share the shards evenly; single mode keeps the old names."""
    assert len(SHARD_TAGS) == SHARDS == 16
    assert [key_slot(tag.encode()) * SHARDS // 16384 for tag in SHARD_TAGS] == list(range(16))
    for name in ("a", "ß😀", "x:room:y"):
        keys = (KEYS.stream(name), KEYS.awareness(name), KEYS.lease(name))
        assert len({key_slot(k.encode()) for k in keys}) == 1
        assert key_slot(KEYS.epoch(KEYS.group(name)).encode()) == key_slot(keys[0].encode())
        assert RedisKeys.room_of_stream(keys[0].encode()) == name
        assert RedisKeys.room_of_channel(keys[1].encode()) == name
    single = RedisKeys()
    assert single.stream("r") == "codementor:room:r"
    assert single.awareness("r") == "codementor:aw:r"
    assert single.lease("r") == "codementor:lease:r"
    assert single.epoch(single.group("r")) == "codementor:epoch"


async def test_rooms_on_every_master_converge_and_awareness_crosses(
    server_factory: Factory, bare_cluster: RedisClusterProcess, tmp_path: Path
) -> None:
    cluster = bare_cluster
    data = tmp_path / "shared"
    servers = await start_instances(server_factory, cluster.url, data, "ab", **CLUSTER_ENV)
    a, b = servers
    rooms = rooms_on_every_master(cluster)
    clients = {room: await connect_all([a.ws_url(room), b.ws_url(room)]) for room in rooms}
    everyone = [c for cs in clients.values() for c in cs]
    burst = Burst(everyone, seed=21).start()
    await asyncio.sleep(2.0)
    await burst.stop()
    assert burst.edits > 200
    for room, cs in clients.items():
        await converge(cs, servers, CONVERGE_TIMEOUT)
        # The keys are where the shard says: on that room's own master.
        node = cluster.node_for(KEYS.stream(room))
        with node.client() as r:
            assert r.xlen(KEYS.stream(room)) > 0, room
        for server in servers:
            text, _ = await fresh_text(server, room)
            assert text == str(cs[0].text)
    await awareness_crosses(clients)
    await check_stored(servers, clients, data)


def _starve_replica(victim: ClusterNode, replica: ClusterNode, stream: str) -> None:
    """Cut the replication link while the victim keeps acknowledging writes: the replica
    is stopped, the victim's output buffer for it is made tiny and filled with a large
    value in the same slot, so the victim drops the replica and what it acknowledges
    from then on exists only on the victim."""
    assert replica.proc is not None
    os.kill(replica.proc.pid, signal.SIGSTOP)
    tag = stream[stream.index("{") : stream.index("}") + 1]
    with victim.client() as r:
        r.config_set("client-output-buffer-limit", "replica 1mb 1mb 0")
        filler = os.urandom(1 << 20)
        for i in range(24):
            r.set(f"filler:{tag}:{i}", filler)

        def dropped() -> bool:
            return int(r.info("replication").get("connected_slaves", 0)) == 0

        wait_until(dropped, 10.0, "victim dropped its stopped replica")


async def test_master_killed_mid_burst_loses_nothing(
    server_factory: Factory, cluster: RedisClusterProcess, tmp_path: Path
) -> None:
    data = tmp_path / "shared"
    servers = await start_instances(server_factory, cluster.url, data, "ab", **CLUSTER_ENV)
    a, b = servers
    rooms = rooms_on_every_master(cluster)
    clients = {room: await connect_all([a.ws_url(room), b.ws_url(room)]) for room in rooms}
    everyone = [c for cs in clients.values() for c in cs]
    doomed = KEYS.stream(rooms[0])
    victim = cluster.node_for(doomed)
    replica = cluster.replica_of(victim)
    assert replica is not None and replica.proc is not None
    burst = Burst(everyone, seed=22).start()
    await asyncio.sleep(1.0)
    await asyncio.to_thread(_starve_replica, victim, replica, doomed)
    await asyncio.sleep(0.5)  # acknowledged by the victim alone
    with victim.client() as r:
        acknowledged = r.xlen(doomed)
        # Both servers listen to awareness there (the first room they loaded is its).
        listeners = len(r.client_list(_type="pubsub"))
    victim.stop(signal.SIGKILL)
    os.kill(replica.proc.pid, signal.SIGCONT)
    await asyncio.to_thread(
        wait_until, lambda: replica.role() == "master", 20.0, "replica promoted"
    )
    with replica.client() as r:
        kept = r.xlen(doomed)
    await asyncio.to_thread(cluster.wait_healthy)
    await asyncio.sleep(1.0)  # the burst goes on against the new master
    await burst.stop()
    # The failover did lose acknowledged entries, so this tests something.
    assert kept < acknowledged, (kept, acknowledged)
    for cs in clients.values():
        await converge(cs, servers, CONVERGE_TIMEOUT)
    for server in servers:
        moved = [e for e in server.events() if e["event"] == "redis_shard_moved"]
        assert moved, f":{server.port} did not notice the failover\n" + logs(servers)
    # Awareness crosses again, though the node the servers listened on is gone for good.
    assert listeners == 2
    await awareness_crosses(clients)
    await check_stored(servers, clients, data)


async def test_master_restarted_empty_without_replica_reseeds(
    server_factory: Factory, bare_cluster: RedisClusterProcess, tmp_path: Path
) -> None:
    data = tmp_path / "shared"
    servers = await start_instances(server_factory, bare_cluster.url, data, "ab", **CLUSTER_ENV)
    a, b = servers
    rooms = rooms_on_every_master(bare_cluster)
    clients = {room: await connect_all([a.ws_url(room), b.ws_url(room)]) for room in rooms}
    everyone = [c for cs in clients.values() for c in cs]
    doomed = KEYS.stream(rooms[0])
    victim = bare_cluster.node_for(doomed)
    burst = Burst(everyone, seed=23, pace=0.01).start()
    await asyncio.sleep(1.0)

    def restart() -> None:
        victim.stop(signal.SIGKILL)
        victim.start()
        bare_cluster.wait_healthy()

    killed_ms = time.time() * 1000
    await asyncio.to_thread(restart)
    with victim.client() as r:
        # It came back empty: whatever the stream holds was written after the kill.
        first = r.xrange(doomed, count=1)
        assert not first or int(first[0][0].split(b"-")[0]) >= killed_ms, first
    await asyncio.sleep(1.0)  # the burst goes on against the empty master
    await burst.stop()
    for cs in clients.values():
        await converge(cs, servers, CONVERGE_TIMEOUT)
    # An instance that loads the room now has only the store and the new stream.
    late = server_factory(
        data_dir=data,
        CODEMENTOR_REDIS_URL=bare_cluster.url,
        CODEMENTOR_INSTANCE_ID="late",
        **CLUSTER_ENV,
    )
    cs = clients[rooms[0]]
    text, doc = await fresh_text(late, rooms[0])
    assert text == str(cs[0].text) and not missing(doc, union_state(c.doc for c in cs))
    for server in servers:
        lost = [e for e in server.events() if e["event"] == "stream_lost"]
        assert any(e.get("room") == rooms[0] for e in lost), logs(servers)
    await check_stored([*servers, late], clients, data)


def test_cluster_setting_is_on_or_off_and_needs_a_url() -> None:
    Settings(redis_url="redis://x:6379/0", redis_cluster="on").validate()
    with pytest.raises(SettingsError):
        Settings(redis_cluster="on").validate()
    with pytest.raises(SettingsError):
        Settings(redis_url="redis://x:6379/0", redis_cluster="yes").validate()
