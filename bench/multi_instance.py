"""Cross-instance delivery delay through a real redis-server: the multi-instance part of
``bench/run.py`` (kept so ``python bench/multi_instance.py`` still works).

usage: python bench/multi_instance.py [--quick]
Writes bench/results/multi_instance.md and .json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import run  # noqa: E402

if __name__ == "__main__":
    sys.argv[1:] = [*sys.argv[1:], "--only", "multi", "--out", "multi_instance"]
    run.main()
