"""The per-frame metrics: kept as plain numbers, turned into series when scraped.

Every update a peer sends passes four metric calls (frames and bytes in, frames and
bytes out, the apply time, the fan-out time). Through prometheus-client each is a
method chain and a lock, a sizeable part of what our code spends on a frame in the
pair benchmark (bench/README, "Things tried"). Here each is an integer add, and
``collect`` builds the same series at scrape time.

Under ``--workers`` (prometheus-client's multiprocess mode) every value must reach
the shared files as it happens, since the worker that answers a scrape reads only
those: there ``DirectFrameMetrics`` uses ordinary prometheus-client metrics.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

_SYNC_TYPES = {0: "sync_step1", 1: "sync_step2", 2: "sync_update"}
_TYPES = {1: "awareness", 2: "auth", 3: "query_awareness", 100: "save_receipt"}
FRAME_TYPES = (
    "sync_step1", "sync_step2", "sync_update", "awareness", "auth",
    "query_awareness", "save_receipt", "other", "empty",
)  # fmt: skip

FRAMES = ("codementor_frames", "Websocket frames by direction and message type.")
BYTES = ("codementor_bytes", "Websocket payload bytes.")
APPLY = (
    "codementor_update_apply_seconds",
    "Time to apply one incoming update to the room's document.",
)
FANOUT = (
    "codementor_fanout_seconds",
    "From an update's receipt to its enqueue on the last local peer.",
)


def frame_type(frame: bytes) -> str:
    """The message type of a frame, for labels: cheap, never raises."""
    if not frame:
        return "empty"
    if frame[0] == 0:
        return _SYNC_TYPES.get(frame[1], "other") if len(frame) > 1 else "other"
    return _TYPES.get(frame[0], "other")


class FrameMetrics:
    """What the frame path counts; subclasses decide where it goes."""

    def received(self, frame: bytes) -> None: ...

    def sent(self, frame: bytes, count: int) -> None: ...

    def applied(self, seconds: float) -> None: ...

    def fanned_out(self, seconds: float) -> None: ...


class Timings:
    """A histogram as a list of per-bucket counts and a sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        # bisect_left: the first bound >= seconds, Prometheus's "le".
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        counts = list(self.counts)  # one consistent copy; scrapes may run in a thread
        cumulative = 0
        buckets: list[tuple[str, float]] = []
        for bound, count in zip((*self.bounds, float("inf")), counts, strict=True):
            cumulative += count
            buckets.append((floatToGoString(bound), cumulative))  # type: ignore[no-untyped-call]
        return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=self.total)


class TalliedFrameMetrics(FrameMetrics, Collector):
    """Plain numbers, registered as a collector: one process serves its own scrapes."""

    def __init__(self, registry: CollectorRegistry, buckets: Sequence[float]) -> None:
        self.frames_in = dict.fromkeys(FRAME_TYPES, 0)
        self.frames_out = dict.fromkeys(FRAME_TYPES, 0)
        self.bytes_in = 0
        self.bytes_out = 0
        self.apply = Timings(buckets)
        self.fanout = Timings(buckets)
        registry.register(self)

    def received(self, frame: bytes) -> None:
        self.frames_in[frame_type(frame)] += 1
        self.bytes_in += len(frame)

    def sent(self, frame: bytes, count: int) -> None:
        if count:
            self.frames_out[frame_type(frame)] += count
            self.bytes_out += len(frame) * count

    def applied(self, seconds: float) -> None:
        self.apply.observe(seconds)

    def fanned_out(self, seconds: float) -> None:
        self.fanout.observe(seconds)

    def collect(self) -> Iterator[Metric]:
        frames = CounterMetricFamily(*FRAMES, labels=["direction", "type"])
        for direction, counts in (("in", self.frames_in), ("out", self.frames_out)):
            for kind, value in list(counts.items()):
                frames.add_metric([direction, kind], value)
        yield frames
        sizes = CounterMetricFamily(*BYTES, labels=["direction"])
        sizes.add_metric(["in"], self.bytes_in)
        sizes.add_metric(["out"], self.bytes_out)
        yield sizes
        yield self.apply.family(*APPLY)
        yield self.fanout.family(*FANOUT)


class DirectFrameMetrics(FrameMetrics):
    """prometheus-client metrics, for multiprocess mode (values written as they happen)."""

    def __init__(self, registry: CollectorRegistry, buckets: Sequence[float]) -> None:
        frames = Counter(*FRAMES, ["direction", "type"], registry=registry)
        sizes = Counter(*BYTES, ["direction"], registry=registry)
        # Pre-bound children: the per-frame path does no label lookups.
        self._frames_in = {t: frames.labels("in", t) for t in FRAME_TYPES}
        self._frames_out = {t: frames.labels("out", t) for t in FRAME_TYPES}
        self._bytes_in = sizes.labels("in")
        self._bytes_out = sizes.labels("out")
        self._apply = Histogram(*APPLY, buckets=buckets, registry=registry)
        self._fanout = Histogram(*FANOUT, buckets=buckets, registry=registry)

    def received(self, frame: bytes) -> None:
        self._frames_in[frame_type(frame)].inc()
        self._bytes_in.inc(len(frame))

    def sent(self, frame: bytes, count: int) -> None:
        if count:
            self._frames_out[frame_type(frame)].inc(count)
            self._bytes_out.inc(len(frame) * count)

    def applied(self, seconds: float) -> None:
        self._apply.observe(seconds)

    def fanned_out(self, seconds: float) -> None:
        self._fanout.observe(seconds)
