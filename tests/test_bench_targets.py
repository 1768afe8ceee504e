"""The targets family's pure parts: every served operation has a case, and histogram
deltas between two /metrics scrapes (no server, no timing)."""

from __future__ import annotations

from typing import Any

import httpx

from bench.service_targets import histogram_delta
from bench.targets_rest import Rest, operations
from server import openapi


async def _never(*_: Any) -> Any:
    raise AssertionError("not called")


def test_every_operation_of_the_openapi_document_has_a_case() -> None:
    rest = Rest(httpx.AsyncClient(), "s" * 64, _never, _never)
    keys = (
        "P",
        "P_owner",
        "R",
        "R_owner",
        "H",
        "H_owner",
        "V",
        "V_owner",
        "U",
        "U_owner",
        "W",
        "W_owner",
        "C",
        "teacher",
        "X",
        "X_room",
        "X_token",
        "entry",
        "run",
        "t0",
    )
    rest.ids = {k: "x" for k in keys}
    called = {case.op.split("?")[0] for case in rest.cases("u-peer")}
    assert set(operations(openapi.build())) <= called


PAGE = """# HELP h x
h_bucket{{le="0.01"}} {a}
h_bucket{{le="0.1"}} {b}
h_bucket{{le="1.0"}} {c}
h_bucket{{le="+Inf"}} {c}
h_count {c}
h_sum {s}
"""


def test_histogram_delta_counts_only_the_window_and_interpolates() -> None:
    before = PAGE.format(a=5, b=5, c=5, s=0.01)
    after = PAGE.format(a=5, b=95, c=105, s=2.01)  # 90 in (10, 100] ms, 10 in (0.1, 1] s
    got = histogram_delta(before, after, "h")
    assert got["count"] == 100
    assert got["mean_ms"] == 20.0
    assert got["share_under_100ms"] == 0.9
    assert got["p50_ms"] == 60.0  # halfway through the (10, 100] ms bucket
    assert got["p95_ms"] == 550.0  # halfway through (0.1, 1] s
    assert histogram_delta(before, before, "h")["p95_ms"] is None
