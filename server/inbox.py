"""Small stand-ins for ``asyncio.Queue`` and ``asyncio.Event`` that an idle connection
can afford: the fast transport keeps one of each per open websocket, for its whole life.
Pure asyncio; they have the behaviour of the calls the transport makes and no more."""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    """The part of ``asyncio.Queue`` a websocket protocol uses (``put_nowait``, ``empty``,
    ``get_nowait``, and ``getter`` for its ``receive``), unbounded, with the same wake-up
    rules, without the queue's three deques and its ``Event``. The transport pauses
    reading after each message, so this holds an item or two, and the app is its only
    reader."""

    __slots__ = ("_items", "_getters")

    def __init__(self) -> None:
        self._items: list[T] = []
        self._getters: list[asyncio.Future[None]] | None = None

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        self._wake_next()

    def get_nowait(self) -> T:
        return self._items.pop(0)

    def getter(self) -> asyncio.Future[None]:
        """A future the next ``put_nowait`` completes, for the protocol's ``receive`` to
        await directly (no ``get`` coroutine: one frame less per idle connection). A
        reader that stops waiting for it (cancelled) calls ``abandon``."""
        getter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._getters is None:
            self._getters = []
        self._getters.append(getter)
        return getter

    def abandon(self, getter: asyncio.Future[None]) -> None:
        getter.cancel()
        if self._getters is not None and getter in self._getters:
            self._getters.remove(getter)
        if self._items and not getter.cancelled():
            self._wake_next()  # it was woken, then cancelled: pass the item on, as asyncio.Queue

    def _wake_next(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                return


class Flag:
    """``asyncio.Event`` (``is_set``, ``set``, ``clear``, ``wait``) whose waiter list is
    made only when someone waits: a transport's writable flag, which is almost always
    set."""

    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters: list[asyncio.Future[bool]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if not self._value:
            self._value = True
            waiters, self._waiters = self._waiters, None
            for waiter in waiters or ():
                if not waiter.done():
                    waiter.set_result(True)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            return await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
