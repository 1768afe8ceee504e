"""Delay from the Anthropic double writing a text delta to that text being in a peer's
document: a real server (subprocess), the real SDK, a real websocket peer.

    .venv/bin/python -m bench.ai_delay [--deltas 200] [--gap 0.02]

``AiWatcher`` and ``first_deltas`` are the ``targets`` family's AI part
(bench/service_targets.py): the server's own share of an answer, ``POST /ai`` to the first
text of the answer in a peer's document, with the double answering at once.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from tests.anthropic_double import AnthropicDouble, Reply
from tests.serverproc import ServerProcess
from tests.support import SECRET, eventually, sign
from tests.test_ai import ai_entries, last_ai_text
from tests.yclient import YClient


class AiWatcher(YClient):
    """A peer that notes when the AI's newest chat entry first holds text, right after
    the frame that brought it is applied."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.seen = 0  # AI entries before the ask being timed
        self.first_text = asyncio.Event()
        self.first_at = 0.0
        self.done = asyncio.Event()

    def expect(self) -> None:
        self.seen = len(ai_entries(self))
        self.first_text = asyncio.Event()
        self.done = asyncio.Event()

    async def _handle(self, frame: bytes) -> None:
        await super()._handle(frame)
        entries = ai_entries(self)
        if len(entries) <= self.seen:
            return
        entry = entries[-1]
        if not self.first_text.is_set() and entry.get("text"):
            self.first_at = time.perf_counter()
            self.first_text.set()
        if self.first_text.is_set() and entry.get("pending") is not True:
            self.done.set()


async def first_deltas(
    http: httpx.AsyncClient, room: str, token: str, peer: AiWatcher, asks: int
) -> dict[str, list[float]]:
    """``asks`` questions one after another in ``room`` (the double answers each at once
    with one short text): ms from just before ``POST /ai`` to its 202, and to the answer's
    first text in ``peer``'s document. Each answer is awaited before the next ask."""
    accepted: list[float] = []
    first: list[float] = []
    headers = {"authorization": f"Bearer {token}"}
    for i in range(asks):
        peer.expect()
        started = time.perf_counter()
        response = await http.post(f"/api/rooms/{room}/ai", json={"prompt": f"q{i}"},
                                   headers=headers)  # fmt: skip
        accepted.append((time.perf_counter() - started) * 1000)
        if response.status_code != 202:
            raise RuntimeError(f"POST /ai: {response.status_code} {response.text[:200]}")
        await asyncio.wait_for(peer.first_text.wait(), 30)
        first.append((peer.first_at - started) * 1000)
        await asyncio.wait_for(peer.done.wait(), 30)
    return {"accepted": accepted, "first_delta": first}


def _post(url: str, body: dict[str, object], token: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.post(url, json=body, headers=headers, timeout=10)


async def main(deltas: int, gap: float) -> None:
    double = AnthropicDouble().start()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "CODEMENTOR_SECRET": SECRET,
            "ANTHROPIC_API_KEY": "bench",
            "CODEMENTOR_AI_BASE_URL": double.url,
            "CODEMENTOR_LOG_LEVEL": "warning",
        }
        proc = ServerProcess(Path(tmp), env).start()
        try:
            room = _post(proc.http_url + "/api/rooms", {"mode": "pair"}).json()["room"]
            steps: list[tuple[object, ...]] = []
            for i in range(deltas):
                steps += [("text", f"w{i} "), ("sleep", gap)]
            double.script(Reply(steps))
            client = YClient(proc.ws_url(room))
            await client.connect(f"token={sign(room, 'owner')}")
            await client.wait_synced()
            seen: dict[str, float] = {}
            expected = "".join(str(s[1]) for s in steps if s[0] == "text")
            r = _post(f"{proc.http_url}/api/rooms/{room}/ai", {"prompt": "go"}, sign(room, "owner"))
            assert r.status_code == 202, r.text
            deadline = time.monotonic() + 60 + deltas * gap * 2
            shown = 0
            while time.monotonic() < deadline:
                text = last_ai_text(client)
                now = time.time()
                words = text.split()
                for word in words[shown:]:
                    seen.setdefault(word, now)
                shown = len(words)
                if text == expected:
                    break
                await asyncio.sleep(0.001)
            await eventually(lambda: last_ai_text(client) == expected, 5)
            await client.close()
        finally:
            proc.stop()
            double.stop()
    delays = sorted((seen[t.strip()] - at) * 1000 for at, t in double.emitted if t.strip() in seen)
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    print(
        f"deltas={len(delays)} gap={gap * 1000:.0f}ms median={statistics.median(delays):.1f}ms "
        f"p99={p99:.1f}ms max={delays[-1]:.1f}ms (flush interval 50 ms)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deltas", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.02)
    args = parser.parse_args()
    asyncio.run(main(args.deltas, args.gap))
