"""Delay from the Anthropic double writing a text delta to that text being in a peer's
document: a real server (subprocess), the real SDK, a real websocket peer.

    .venv/bin/python -m bench.ai_delay [--deltas 200] [--gap 0.02]
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
from tests.test_ai import last_ai_text
from tests.yclient import YClient


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
