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
class TargetsPlan:
    """``--only targets`` (bench/service_targets.py): the seed's service targets, ours only."""

    sockets: int  # live websockets: the class (writer + readers) and idle readers
    readers: int  # the broadcast class's viewers (the owner types 10/s)
    procs: int  # generator processes
    window_s: float  # the traffic window; the measurements must fit in it
    calls: int  # calls per REST operation, one after another
    workers: int  # clients at once in the concurrent phase
    asks: int  # AI questions
    runs: int  # code runs
    repeats: int  # fresh servers, one after another


@dataclass(frozen=True)
class MixedPlan:
    """``mixed`` (issue 22, item 1): broadcast classes and pair rooms on one server at once."""

    classes: int  # broadcast classes: 1 teacher typing, ``students`` viewers each
    students: int
    teacher_rate: float  # teacher keystrokes per second, a cursor (awareness) with each
    pairs: int  # pair rooms, 2 editors each
    active_pairs: int  # ... of which this many have both editors typing
    pair_rate: float  # keystrokes per second of each typing editor, a cursor with each
    renew_s: float  # every reader renews its awareness this often (y-protocols: 15 s)
    window_s: float  # traffic window
    class_procs: int  # generator processes for the classes (students dealt round-robin)
    pair_procs: int  # ... and for the pair rooms
    node_share: float  # Node (and ours again, for the ratio) runs this share of the load
    node_note: str  # why Node does not run the whole load


MIXED_FULL = MixedPlan(
    classes=8, students=1000, teacher_rate=5, pairs=1000, active_pairs=200, pair_rate=3,
    renew_s=15, window_s=25, class_procs=4, pair_procs=1, node_share=0.25,
    node_note=(
        "Node relays every awareness renewal to the whole class: 8 × 1,000 × 999 / 15 s = "
        "533,000 frames/s for the generators to read (67 per student per second), past what "
        "the generators can read on this machine; it runs the same load at a quarter "
        "(8 × 250 students: 33,000 frames/s), and ours does too, for the ratio"
    ),
)  # fmt: skip
MIXED_QUICK = MixedPlan(
    classes=8, students=100, teacher_rate=5, pairs=100, active_pairs=20, pair_rate=3,
    renew_s=15, window_s=8, class_procs=2, pair_procs=1, node_share=1.0, node_note="",
)  # fmt: skip


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
    targets: TargetsPlan = TargetsPlan(
        sockets=5000, readers=300, procs=2, window_s=200, calls=60, workers=4, asks=30,
        runs=30, repeats=3,
    )  # fmt: skip

    mixed: MixedPlan = MIXED_FULL


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
    targets=TargetsPlan(
        sockets=500,
        readers=100,
        procs=1,
        window_s=60,
        calls=10,
        workers=2,
        asks=5,
        runs=5,
        repeats=1,
    ),  # fmt: skip
    mixed=MIXED_QUICK,
)
