"""The teacher's grid under a class typing: how late a keystroke reaches the grid, and
what the grid costs the server.

usage: python bench/class_grid.py [--students 200] [--seconds 60] [--rate 2] [--json PATH]

A real server (``codementor serve`` subprocess). A teacher makes a broadcast class and an
exercise over REST; ``--students`` students join it (``POST /api/exercises/{id}/join``,
each with their own personal token) and connect to their own rooms over real websockets;
the teacher's grid is one more websocket, to the exercise room. Every student then types
``--rate`` keystrokes a second (one character each, staggered) for ``--seconds``.

Grid delay: from a student's keystroke leaving the client to the first grid update in
the teacher's document whose tile shows it (its ``first_lines`` grew to that length).
The grid pushes at most once a second per student (``rooms.class_grid.INTERVAL``), so
about half a second of the delay is that throttle, by design.

Server CPU: the server process's user+system seconds over the typing window, per second.
The same students then type the same way in plain pair rooms (no exercise, no grid) on a
fresh server: the ratio of the two is what exercises and the grid cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.procs import cpu_seconds  # noqa: E402
from crdt import schema  # noqa: E402
from tests.serverproc import ServerProcess  # noqa: E402
from tests.support import sign  # noqa: E402
from tests.yclient import YClient  # noqa: E402

SECRET = "bench-secret-" + "0123456789abcdef" * 2


class GridWatcher(YClient):
    """The teacher's grid: notes when each student's tile first showed N characters."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.seen: dict[str, list[tuple[int, float]]] = {}  # key -> (length, arrival)
        self.updates = 0

    async def _handle(self, frame: bytes) -> None:
        await super()._handle(frame)
        now = time.perf_counter()
        state = schema.class_state(self.doc)
        for key, raw in state.items():
            if not key.startswith("student:") or not isinstance(raw, str):
                continue
            tile = json.loads(raw)
            length = len(tile.get("first_lines") or "")
            marks = self.seen.setdefault(key[len("student:") :], [])
            if not marks or marks[-1][0] < length:
                marks.append((length, now))
                self.updates += 1


class Student:
    def __init__(self, key: str, client: YClient) -> None:
        self.key = key
        self.client = client
        self.sent: list[float] = []  # perf_counter of keystroke n (1-based: sent[n-1])

    async def type(self, rate: float, until: float) -> None:
        await asyncio.sleep(random.random() / rate)  # staggered
        while time.perf_counter() < until:
            self.client.text += "x"
            self.sent.append(time.perf_counter())
            await asyncio.sleep(1 / rate)


def start_server(data: str) -> ServerProcess:
    return ServerProcess(
        Path(data),
        {
            "CODEMENTOR_SECRET": SECRET,
            "CODEMENTOR_LOG_LEVEL": "warning",
            "CODEMENTOR_API_RATE_PER_MINUTE": "1000000",
        },
    ).start()


async def class_with_grid(
    server: ServerProcess, students: int
) -> tuple[GridWatcher, list[Student]]:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=30) as http:
        created = await http.post("/api/rooms", json={"mode": "broadcast", "title": "Bench"})
        class_room = created.json()["room"]
        teacher = {
            "authorization": f"Bearer {sign(class_room, 'owner', name='Tess', secret=SECRET)}"
        }
        body = {"title": "Type", "files": {"main.py": ""}}
        made = await http.post(f"/api/rooms/{class_room}/exercises", json=body, headers=teacher)
        assert made.status_code == 201, made.text
        exercise = made.json()
        grid = GridWatcher(server.ws_url(exercise["room"]))
        await grid.connect(f"token={exercise['token']}")
        await grid.wait_synced(30)
        out: list[Student] = []
        for number in range(students):
            token = sign(
                class_room, "viewer", name=f"Student {number}", personal=True, secret=SECRET
            )
            joined = await http.post(
                f"/api/exercises/{exercise['id']}/join",
                headers={"authorization": f"Bearer {token}"},
            )
            assert joined.status_code in (200, 201), joined.text
            room = joined.json()["room"]
            client = YClient(server.ws_url(room))
            await client.connect(f"token={joined.json()['token']}")
            await client.wait_synced(30)
            out.append(Student(room.rsplit(".", 1)[1], client))
    return grid, out


async def plain_rooms(server: ServerProcess, students: int) -> list[Student]:
    out: list[Student] = []
    async with httpx.AsyncClient(base_url=server.http_url, timeout=30) as http:
        for number in range(students):
            created = await http.post("/api/rooms", json={"mode": "pair"})
            room = created.json()["room"]
            client = YClient(server.ws_url(room))
            await client.connect(f"token={sign(room, 'editor', name=f'S{number}', secret=SECRET)}")
            await client.wait_synced(30)
            out.append(Student(room, client))
    return out


async def typing(
    server: ServerProcess, students: list[Student], seconds: float, rate: float
) -> float:
    """Type for ``seconds``; the server's CPU over that window, in cores."""
    assert server.proc is not None
    pid = server.proc.pid
    await asyncio.sleep(2)  # joins settled
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    until = t0 + seconds
    await asyncio.gather(*(s.type(rate, until) for s in students))
    cpu = (cpu_seconds(pid) - cpu0) / (time.perf_counter() - t0)
    await asyncio.sleep(2.5)  # the last pushes arrive
    return cpu


def delays(grid: GridWatcher, students: list[Student]) -> tuple[list[float], int]:
    out: list[float] = []
    missing = 0
    for student in students:
        marks = grid.seen.get(student.key, [])
        for n, sent in enumerate(student.sent, start=1):
            arrival = next((at for length, at in marks if length >= n), None)
            if arrival is None:
                missing += 1
            else:
                out.append(arrival - sent)
    return out, missing


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=2.0, help="keystrokes per second each")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        server = start_server(data)
        try:
            grid, students = await class_with_grid(server, args.students)
            cpu_grid = await typing(server, students, args.seconds, args.rate)
            samples, missing = delays(grid, students)
            grid_updates = grid.updates
            for student in students:
                await student.client.close()
            await grid.close()
        finally:
            server.stop()
    with tempfile.TemporaryDirectory() as data:
        server = start_server(data)
        try:
            plain = await plain_rooms(server, args.students)
            cpu_plain = await typing(server, plain, args.seconds, args.rate)
            for student in plain:
                await student.client.close()
        finally:
            server.stop()
    keystrokes = sum(len(s.sent) for s in students)
    results: dict[str, Any] = {
        "students": args.students,
        "seconds": args.seconds,
        "rate_per_student": args.rate,
        "keystrokes": keystrokes,
        "keystrokes_not_shown": missing,
        "grid_tile_updates": grid_updates,
        "grid_delay_ms": {
            "median": round(statistics.median(samples) * 1000, 1),
            "p95": round(percentile(samples, 0.95) * 1000, 1),
            "p99": round(percentile(samples, 0.99) * 1000, 1),
            "max": round(max(samples) * 1000, 1),
        },
        "server_cpu_cores": {"with_grid": round(cpu_grid, 3), "plain_rooms": round(cpu_plain, 3)},
        "cpu_ratio_grid_over_plain": round(cpu_grid / cpu_plain, 2) if cpu_plain else None,
    }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
