"""Colours written by peers (chat and comment entries in the document) reach `style`
attributes only when they are hex colours (against CSS injection)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from pycrdt import Array, Map

from crdt import schema
from tests.e2e.conftest import create_room
from tests.e2e.helpers import open_room, show_tab
from tests.serverproc import ServerProcess
from tests.yclient import YClient

BAD = "red"  # a valid CSS colour, and not hex: anything but #rgb/#rrggbb is refused
GOOD = "#0f7481"


def write_entries(server: ServerProcess, room: str, token: str) -> None:
    """A peer (a real websocket client, in a thread of its own) writes entries whose
    colours are not hex."""

    async def write() -> None:
        peer = await YClient(server.ws_url(room)).connect(f"token={token}")
        await peer.wait_synced()
        chat: Array[Any] = schema.chat(peer.doc)
        comments: Map[Any] = schema.comments(peer.doc)
        with peer.doc.transaction():
            chat.append(Map({"id": "m1", "author": "Eve", "color": BAD, "text": "hi"}))
            chat.append(Map({"id": "m2", "author": "Eve", "color": BAD, "text": "?", "ai": True}))
            chat.append(Map({"id": "m3", "author": "Eve", "color": GOOD, "text": "ok"}))
            comments["c1"] = Map({"author": "Eve", "color": BAD, "text": "look here"})
        await peer.close()  # sends what is queued first

    thread = threading.Thread(target=lambda: asyncio.run(write()))
    thread.start()
    thread.join(30)


def test_peer_written_colours_that_are_not_hex_are_not_applied(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "pair", "python", "Colours")
    page = open_room(people.page("Ada"), room["links"]["owner"])
    write_entries(e2e_server, room["room"], room["owner_token"])
    messages = page.locator(".chat-message")
    messages.nth(2).wait_for()
    show_tab(page, "Comments")
    comment = page.locator(".comment", has_text="look here")
    comment.wait_for()
    styles = page.evaluate(
        """() => {
            const person = (el) => el.style.getPropertyValue('--person')
            return [
                ...Array.from(document.querySelectorAll('.chat-message'), (li) => [
                    person(li.querySelector('.author')), li.style.borderLeftColor]),
                ...Array.from(document.querySelectorAll('.comment .author'), (a) => [person(a)]),
            ]
        }"""
    )
    assert styles == [["", ""], ["", ""], [GOOD, ""], [""]], styles
    screenshot(page)
