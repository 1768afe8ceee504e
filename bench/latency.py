"""Delivery delay, our server against @y/websocket-server: the pair and broadcast part of
``bench/run.py`` (kept so ``python bench/latency.py`` still works).

usage: python bench/latency.py [--quick]
Writes bench/results/latency.md and .json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import run  # noqa: E402

if __name__ == "__main__":
    sys.argv[1:] = [*sys.argv[1:], "--only", "pair,broadcast", "--out", "latency"]
    run.main()
