"""What a run measures at which scale: the full plan (``make bench``) and the smoke plan
(``--quick``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TransportPlan:
    """``--only transport``: our server with its websocket fast path off and on (auto)."""

    pair: int  # rooms × 2 writers × 5/s
    broadcast: int  # readers of 1 writer at 10/s
    idle: int  # idle connections, 10 per room
    runs: int  # interleaved runs per setting (off, auto, off, auto, ...), pooled


@dataclass(frozen=True)
class WorkspacePlan:
    """``--only workspace``: 100 files against one file of the same size, ours only."""

    rooms: int  # rooms of each kind
    files: int  # files of the workspace rooms (the entry file in ``code``)
    edits: int  # inserts building each 1 MB document
    rate: float  # keystrokes per second of each room's editor
    window_s: float  # one typing window
    windows: int  # typing windows per kind (workspace, single, single, workspace, ...)
    warm_passes: int  # joins of every room while it is in memory


@dataclass(frozen=True)
class HistoryPlan:
    """``--only history``: our server with history on and off, and the store's hour."""

    pair: list[tuple[int, int]]  # (rooms, generator processes) of the CPU A/B
    runs: int  # runs per setting, taking turns (on, off, off, on, on, off, ...)
    typing_s: float  # synthetic typing written to the store (numbers given per hour)
    seeks: int  # random moments seeked, besides the first and the last
    seek_runs: int  # index builds and seek passes
    store_rooms: int  # pair rooms of the in-process store A/B (no server)
    store_s: float  # ... seconds of their typing per run (runs: ``runs`` per setting)


@dataclass(frozen=True)
class ScaleoutPlan:
    """``--only scaleout``: capacity of one process against several (bench/scaleout.py)."""

    deployments: list[str]  # keys of bench.scaleout.DEPLOYMENTS
    broadcast: list[int]  # ladder of readers (1 writer at 10/s)
    broadcast_first: int  # index of the first step (up from there while it passes, or down)
    pair: list[int]  # ladder of pair rooms (2 writers × 5/s)
    pair_first: int
    window_s: float  # one step's traffic window
    drain_s: float  # ... and how long lost updates are waited for
    budget_s: float  # one search (deployment × kind) starts no step after this


@dataclass
class Plan:
    duration: float
    pair: list[tuple[int, int]]  # (rooms, generator processes)
    broadcast: list[tuple[int, int, int]]  # (readers, generator processes, runs pooled)
    storm: list[tuple[int, int, int]]
    storm_node_max: int  # beyond this the Node server's all-to-all relay swamps any generator
    storm_duration: float
    capacity: list[tuple[int, int]]  # (connections, generator processes)
    cold_rooms: int
    warm_sample: int  # warm joins timed on this many of the rooms
    cold_edits: int
    multi_broadcast: int
    multi_pair: int
    transport: TransportPlan
    workspace: WorkspacePlan
    history: HistoryPlan
    scaleout: ScaleoutPlan
    notes: list[str]


FULL = Plan(
    duration=8,
    pair=[(50, 1), (200, 1), (500, 2)],
    # 100 readers: 4 interleaved runs per server, pooled (bench/README, "Repeated runs")
    broadcast=[(100, 1, 4), (500, 1, 1), (1000, 2, 1), (2000, 2, 1)],
    storm=[(100, 1, 4), (500, 2, 1), (2000, 2, 1)],
    storm_node_max=500,
    storm_duration=10,
    capacity=[(1000, 2), (5000, 2), (10000, 2)],
    cold_rooms=100,
    warm_sample=30,
    cold_edits=20000,
    multi_broadcast=1000,
    multi_pair=200,
    transport=TransportPlan(pair=200, broadcast=500, idle=2000, runs=2),
    workspace=WorkspacePlan(
        rooms=20, files=100, edits=20000, rate=10, window_s=8, windows=2, warm_passes=2
    ),  # fmt: skip
    # pair: make bench's middle and largest scales
    history=HistoryPlan(
        pair=[(200, 1), (500, 2)],
        runs=3,
        typing_s=3600,
        seeks=200,
        seek_runs=2,
        store_rooms=200,
        store_s=20,
    ),  # fmt: skip
    scaleout=ScaleoutPlan(
        deployments=["single", "workers2", "affinity2", "roundrobin2", "affinity3", "roundrobin3"],
        broadcast=[500, 1000, 2000, 3000, 4500],
        broadcast_first=2,
        pair=[25, 50, 100, 200, 300, 450, 600],
        pair_first=3,
        window_s=5,
        drain_s=2,
        budget_s=35,
    ),  # fmt: skip
    notes=[],
)

QUICK = Plan(
    duration=4,
    pair=[(20, 1)],
    broadcast=[(100, 1, 1)],
    storm=[(100, 1, 1)],
    storm_node_max=100,
    storm_duration=5,
    capacity=[(500, 1)],
    cold_rooms=10,
    warm_sample=10,
    cold_edits=20000,
    multi_broadcast=100,
    multi_pair=20,
    transport=TransportPlan(pair=20, broadcast=100, idle=500, runs=1),
    workspace=WorkspacePlan(
        rooms=3, files=100, edits=20000, rate=10, window_s=3, windows=1, warm_passes=1
    ),  # fmt: skip
    history=HistoryPlan(
        pair=[(20, 1)], runs=1, typing_s=300, seeks=20, seek_runs=1, store_rooms=20, store_s=5
    ),  # fmt: skip
    scaleout=ScaleoutPlan(
        deployments=["single", "workers2", "affinity2", "roundrobin2"],
        broadcast=[100, 200],
        broadcast_first=0,
        pair=[20, 40],
        pair_first=0,
        window_s=3,
        drain_s=2,
        budget_s=20,
    ),  # fmt: skip
    notes=["--quick: smoke scales, not results"],
)
