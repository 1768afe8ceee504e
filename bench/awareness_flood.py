"""A viewer flooding a room with awareness states (unbounded awareness), measured.

A viewer of a broadcast room sends frames of many awareness client ids, then one
state of several MiB; this prints the server's RSS before and after and the size of
the awareness snapshot a newcomer (the teacher) receives. Run it before and after a
change to the awareness bounds::

    .venv/bin/python bench/awareness_flood.py [--frames 5] [--ids 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crdt import protocol  # noqa: E402
from crdt.awareness import Entry, encode_update  # noqa: E402
from tests.serverproc import ServerProcess  # noqa: E402

SECRET = "awareness-flood-secret-0123456789abcdef"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def newcomer_snapshot(server: ServerProcess, room: str, token: str) -> int:
    """The size of the largest awareness frame a joining teacher gets within 2 s."""
    async with websockets.connect(server.ws_url(room, f"token={token}"), max_size=None) as ws:
        await ws.send(protocol.sync_step1(b"\x00"))
        largest = 0
        try:
            while True:
                frame = await asyncio.wait_for(ws.recv(), 2)
                if isinstance(frame, bytes) and frame[0] == protocol.MessageType.AWARENESS:
                    largest = max(largest, len(frame))
        except (TimeoutError, websockets.ConnectionClosed):
            pass
    return largest


async def flood(server: ServerProcess, frames: int, ids: int, big_mib: float) -> None:
    assert server.proc is not None
    pid = server.proc.pid
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        created = (
            await http.post("/api/rooms", json={"mode": "broadcast", "title": "flood"})
        ).json()
    room = created["room"]
    viewer_link = created["links"]["viewer"]
    viewer_token = viewer_link.split("token=", 1)[1]
    print(f"RSS at start: {rss_mib(pid):.0f} MiB")
    closed_with: int | None = None
    async with websockets.connect(
        server.ws_url(room, f"token={viewer_token}"), max_size=None
    ) as ws:
        state = json.dumps({"user": {"name": "x", "color": "#123456"}})
        sent = 0
        try:
            for f in range(frames):
                entries = [Entry(f * ids + i + 1, 1, state) for i in range(ids)]
                await ws.send(protocol.awareness_frame(encode_update(entries)))
                sent += 1
            big = json.dumps({"user": {"name": "y" * int(big_mib * 1024 * 1024)}})
            await ws.send(protocol.awareness_frame(encode_update([Entry(7, 1, big)])))
            sent += 1
            # Wait for the server to have read everything (a ping round trip), or the close.
            await asyncio.wait_for(await ws.ping(), 60)
        except websockets.ConnectionClosed as exc:
            closed_with = exc.rcvd.code if exc.rcvd else None
        if closed_with is None:
            try:
                await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                pass
            except websockets.ConnectionClosed as exc:
                closed_with = exc.rcvd.code if exc.rcvd else None
        print(f"frames sent: {sent}; the viewer's socket closed with: {closed_with}")
        print(f"RSS after the flood: {rss_mib(pid):.0f} MiB")
        # A newcomer (the teacher, who sees the audience's presence) joins while the
        # viewer is still connected and gets the room's awareness snapshot.
        snapshot = await newcomer_snapshot(server, room, created["owner_token"])
        print(f"newcomer's awareness snapshot: {snapshot / 1e6:.2f} MB")
    print(f"RSS at the end: {rss_mib(pid):.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--ids", type=int, default=100_000)
    parser.add_argument("--big-mib", type=float, default=7.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {"CODEMENTOR_SECRET": SECRET, "CODEMENTOR_LOG_FORMAT": "json"}
        with ServerProcess(Path(tmp) / "data", env) as server:
            asyncio.run(flood(server, args.frames, args.ids, args.big_mib))


if __name__ == "__main__":
    main()
