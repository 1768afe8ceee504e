"""Where a room's Redis keys live: one Redis, or a Redis Cluster.

A Redis Cluster runs a command only if all its keys hash to ONE slot (one node is not
enough: CROSSSLOT), so the single-Redis reader, one XREAD naming every loaded room's
stream, is refused there. "One XREAD per room" would work but costs one blocking
connection per room. Instead a room's keys carry one of ``SHARDS`` hash tags:

- single Redis (the default): the names multi-instance mode always used,
  ``codementor:room:{name}`` (stream), ``codementor:aw:{name}`` (awareness channel),
  ``codementor:lease:{name}``, one ``codementor:epoch`` and one ``codementor:news``
  (``rooms.redis_broker``); one read group, so one XREAD
  names every loaded room, as before. Existing deployments keep their keys and can be
  upgraded one instance at a time.
- cluster: ``codementor:{<tag>}:room:{name}``, ``...:aw:``, ``...:lease:``, and one epoch and
  one news stream per shard, ``codementor:{<tag>}:epoch`` and ``...:news``. A room's shard
  is ``crc32(name) % SHARDS`` (stable across processes and Python versions); every key of
  the shard sits in the tag's slot, so an instance makes one blocking XREAD per shard that
  has loaded rooms, at most ``SHARDS`` whatever the number of rooms, spread over the
  masters that own those slots.
  The epoch sits in its shard's slot, so it is lost exactly when that shard's streams
  are (a master restarted empty) and moves with them (resharding, failover).

``SHARDS`` is a constant, not a setting: instances that disagreed on it would write one
room under two names and silently stop sharing it. Shard ``i``'s tag hashes into the
``i``-th sixteenth of the slot space (``tests/test_redis_cluster.py`` checks it), so a
cluster whose masters own equal contiguous slot ranges, as ``redis-cli --cluster create``
makes them, gets an even share of the shards (3 masters: 6, 5 and 5). More than 16
masters would leave some idle: the cap on how far one deployment's update traffic spreads.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

SHARDS = 16
SHARD_TAGS = (
    "s00b0", "s01c0", "s02p0", "s03q0", "s04f0", "s05g0", "s06d0", "s07e0",
    "s08j0", "s09k0", "s10i8", "s11h8", "s12d8", "s13e8", "s14m8", "s15l8",
)  # fmt: skip
STREAM_MARK = ":room:"
# Pub/sub channel of room deletions (classic PUBLISH: a cluster's bus takes it to every
# node): ``{instance}\0{room}``.
DELETED_CHANNEL = "codementor:deleted"
AWARENESS_MARK = ":aw:"


def shard_of(room: str) -> int:
    """The room's shard: a hash every process computes alike."""
    return zlib.crc32(room.encode()) % SHARDS


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """Key names and read groups for one mode (``cluster`` or not)."""

    cluster: bool = False

    def group(self, room: str) -> int:
        """Rooms of one group are read by one XREAD (single Redis: all of them)."""
        return shard_of(room) if self.cluster else 0

    def _prefix(self, room: str) -> str:
        if self.cluster:
            return f"codementor:{{{SHARD_TAGS[shard_of(room)]}}}"
        return "codementor"

    def stream(self, room: str) -> str:
        return f"{self._prefix(room)}{STREAM_MARK}{room}"

    def awareness(self, room: str) -> str:
        return f"{self._prefix(room)}{AWARENESS_MARK}{room}"

    def lease(self, room: str) -> str:
        return f"{self._prefix(room)}:lease:{room}"

    def news(self, group: int) -> str:
        """The group's news stream: which rooms a publish batch wrote to (in the group's
        slot, so one XREAD names it with the group's room streams)."""
        return f"codementor:{{{SHARD_TAGS[group]}}}:news" if self.cluster else "codementor:news"

    def epoch(self, group: int) -> str:
        """The key that changes when Redis lost the group's data."""
        return f"codementor:{{{SHARD_TAGS[group]}}}:epoch" if self.cluster else "codementor:epoch"

    def room_keys(self, room: str) -> tuple[str, ...]:
        """Every key that belongs to one room (its awareness channel is no key): what a
        deletion removes. The epoch and news streams are shared, not the room's."""
        return (self.stream(room), self.lease(room))

    @staticmethod
    def named_lease(name: str) -> str:
        """A lease for work one instance at a time does (``codementor:lease-of:{name}``)."""
        return f"codementor:lease-of:{name}"

    @staticmethod
    def room_of_stream(key: bytes) -> str:
        # The first mark is the prefix's: a room name holding one comes after it.
        return key.decode().partition(STREAM_MARK)[2]

    @staticmethod
    def room_of_channel(channel: bytes) -> str:
        return channel.decode().partition(AWARENESS_MARK)[2]
