"""Playback of a long room: two people typing at once for ``--hours``, written through the
real store code, then the playback index built and seeked as ``--only history`` does for
one hour. Prints one JSON object. Not part of ``bench/run.py``: 7.5 h (270,000 updates,
~13,000 rows) takes about 3.5 minutes and 1.6 GB of memory. Since rows are a room's 2 s
window (e77cab3), the default 200,000-row cap holds ~116 hours of two typists, beyond this
script's 24 h limit and the index's memory (bench/README "History", "At the row cap").

usage: .venv/bin/python bench/history_cap.py [--hours 7.5] [--seeks 200]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.history_store import HOUR, record_hour, seek_latency, typing_hour  # noqa: E402
from rooms.history import HistorySettings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--hours", type=float, default=7.5)
    parser.add_argument("--seeks", type=int, default=200)
    args = parser.parse_args()
    if not 0 < args.hours <= 24 or not 0 < args.seeks <= 10_000:
        parser.error("--hours must be in (0, 24] and --seeks in (0, 10000]")
    started = time.perf_counter()
    keys = typing_hour(2, args.hours * HOUR)
    generate_s = time.perf_counter() - started
    work = Path(tempfile.mkdtemp(prefix="history-cap-"))
    try:
        stored = record_hour(keys, work / "codementor.sqlite3", HistorySettings())
        seeks = seek_latency(work / "codementor.sqlite3", args.seeks)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = {"hours": args.hours, "generate_s": round(generate_s, 1), "store": stored,
           "seek": seeks}  # fmt: skip
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
