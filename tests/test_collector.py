"""The garbage collector's tuning (server.collector) for a serving process."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

from server import collector


def test_tune_makes_full_collections_rarer_and_keeps_the_young_thresholds() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        collector.tune()
        assert gc.get_threshold() == (700, 10, collector.FULL_COLLECTION_EVERY)
        assert collector.FULL_COLLECTION_EVERY > 10  # rarer than CPython's default
    finally:
        gc.set_threshold(*before)


def test_a_workers_process_tunes_its_collector(tmp_path: Path) -> None:
    """``--workers`` processes are spawned fresh: each builds its app through
    ``app_from_env``, which must tune its own collector."""
    code = (
        "import gc, os\n"
        f"os.environ['CODEMENTOR_DATA_DIR'] = {str(tmp_path)!r}\n"
        "from server.app import app_from_env\n"
        "app_from_env()\n"
        "print(gc.get_threshold()[2])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == str(collector.FULL_COLLECTION_EVERY)
