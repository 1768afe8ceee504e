"""How many rooms one user or one address may make: what keeps storage from only ever
growing when anyone may make rooms (forks, dev mode's anonymous rooms).

- Rooms per user: the rooms whose ``RoomInfo.owner`` is the caller's verified token id,
  counted in the store, so every instance sees the same count and deleting a room frees
  a slot at once. Over it: 429 without ``Retry-After`` (waiting frees nothing).
- Forks per user per hour over all rooms: the same rooms, made within the last hour
  (also counted in the store; ``forks_per_user_per_hour`` in ``server.api`` still bounds
  forks of one room). Over it: 429 with ``Retry-After`` until the oldest leaves the hour.
- Rooms per address per hour, when rooms are made without the admin token (dev mode:
  ``POST /api/rooms``, importing a room file, and opening a name that does not exist
  yet): a token bucket per client address, per process (``server.ratelimit``), loopback
  addresses exempt. Over it: 429 with ``Retry-After``.
"""

from __future__ import annotations

import ipaddress
import time

from rooms.persistence import StoreWorker
from server.errors import ApiError
from server.metrics import Metrics
from server.ratelimit import RateLimiter, retry_after_header
from server.settings import Settings

HOUR = 3600.0


class Quotas:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.addresses = RateLimiter(settings.rooms_per_address_per_hour, window=HOUR)

    async def check_owner(self, worker: StoreWorker, owner: str) -> None:
        """Raise 429 if ``owner`` may not have one more room made for them now."""
        limit, hourly = self.settings.rooms_per_user, self.settings.user_forks_per_hour
        if not owner or (limit == 0 and hourly == 0):
            return
        if limit:
            count, _ = await worker.run(worker.store.owned_rooms, owner)
            if count >= limit:
                self.metrics.quota_refusals.labels("rooms_per_user").inc()
                raise ApiError(
                    429,
                    f"you own {count} rooms, the most one person may (CODEMENTOR_ROOMS_PER_USER"
                    f"={limit}); delete one to make another",
                )
        if hourly:
            now = time.time()
            count, oldest = await worker.run(worker.store.owned_rooms, owner, now - HOUR)
            if count >= hourly:
                self.metrics.quota_refusals.labels("user_forks_per_hour").inc()
                wait = (oldest or now) + HOUR - now
                raise ApiError(
                    429,
                    f"at most {hourly} forks per hour over all rooms",
                    headers={"Retry-After": retry_after_header(wait)},
                )

    def check_address(self, address: str) -> None:
        """Take one room from ``address``'s hourly bucket, or raise 429. A loopback
        address is never limited: it is this machine's own user (a developer's browser on
        ``make run``, the tests, a benchmark), not a remote one. Behind a proxy on this
        machine the address is the client's, from ``X-Forwarded-For`` when the proxy is
        trusted (``CODEMENTOR_FORWARDED_ALLOW_IPS``); a proxy that sends none makes every
        client loopback, and the quota then limits nobody."""
        if _loopback(address):
            return
        wait = self.addresses.check(f"addr:{address}")
        if wait > 0:
            self.metrics.quota_refusals.labels("rooms_per_address_per_hour").inc()
            raise ApiError(
                429,
                f"at most {self.settings.rooms_per_address_per_hour} new rooms per hour from "
                "one address without the admin token",
                headers={"Retry-After": retry_after_header(wait)},
            )


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
