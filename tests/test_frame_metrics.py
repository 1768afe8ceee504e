"""The per-frame metrics kept as plain numbers must scrape exactly as prometheus-client's
own metrics would (the dashboard and alerts read them by those names and labels)."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from crdt import protocol
from server.frame_metrics import DirectFrameMetrics, FrameMetrics, TalliedFrameMetrics
from server.metrics import FAST_BUCKETS

FRAMES = [
    protocol.update_frame(b"\x00\x00"),
    protocol.sync_step1(b"\x00"),
    protocol.sync_step2(b"\x00\x00"),
    protocol.awareness_frame(b"\x00"),
    protocol.save_receipt_frame(b"\x00"),
    b"",
    b"\x00",
    b"\x09\x01",
]


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue  # when a series was made: differs by construction
            out[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return out


def feed(metrics: FrameMetrics, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(2000):
        frame = rng.choice(FRAMES)
        metrics.received(frame)
        metrics.sent(frame, rng.choice([0, 1, 7]))
        # Bucket bounds themselves too: "le" means less than or equal.
        metrics.applied(rng.choice([rng.uniform(0, 0.02), rng.choice(FAST_BUCKETS), 99.0]))
        metrics.fanned_out(rng.expovariate(1000))


def test_tallied_metrics_scrape_like_prometheus_client() -> None:
    tallied, direct = CollectorRegistry(), CollectorRegistry()
    feed(TalliedFrameMetrics(tallied, FAST_BUCKETS), seed=7)
    feed(DirectFrameMetrics(direct, FAST_BUCKETS), seed=7)
    ours, theirs = samples(tallied), samples(direct)
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        assert abs(ours[key] - value) <= 1e-9 * max(1.0, abs(value)), key
    # Not vacuous: frames of every kind were counted, and the slowest apply is in +Inf only.
    assert ours["codementor_frames_total", (("direction", "in"), ("type", "sync_update"))] > 0
    inf = ("codementor_update_apply_seconds_bucket", (("le", "+Inf"),))
    ten = ("codementor_update_apply_seconds_bucket", (("le", "10.0"),))
    assert ours[inf] == 2000 and ours[inf] > ours[ten]


def test_a_fresh_server_exposes_every_series_at_zero() -> None:
    registry = CollectorRegistry()
    TalliedFrameMetrics(registry, FAST_BUCKETS)
    values = samples(registry)
    assert values["codementor_frames_total", (("direction", "out"), ("type", "awareness"))] == 0
    assert values["codementor_fanout_seconds_count", ()] == 0
