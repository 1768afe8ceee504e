"""Python's cyclic garbage collector, tuned for a process holding thousands of sockets.

A full collection walks every tracked object, and a server with 10,000 connections
holds millions: while clients connect, CPython's default (a full collection after
every 10 collections of the middle generation) paused the event loop often enough
to raise the per-client connect p99 to 247-279 ms at 10,000 clients (94-102 ms with
this tuning) and to 210-221 ms at 5,000 (86-109 ms), in ``bench/run.py --only capacity``
runs taking turns (bench/README.md, "Connecting", "The garbage collector"). One full
collection per 100 keeps that tail without holding more memory per idle connection
(7.7-8.5 KiB either way); CPU per connect did not change measurably. ``gc.freeze()``
after start-up was tried too and changed nothing: the cost is in the connections'
objects, not the start-up heap.
"""

from __future__ import annotations

import gc

# Collections of the middle generation per full collection (CPython's default: 10).
FULL_COLLECTION_EVERY = 100


def tune() -> None:
    """Make full collections rarer; the young generations keep their thresholds."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
