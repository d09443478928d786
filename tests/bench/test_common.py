"""`bench.common`: reading histograms from a scraped /metrics page."""

from __future__ import annotations

import pytest

from bench.common import histogram_buckets, histogram_quantile

# As prometheus_client exposes them: labels sorted by name, so `le` may come first or not.
SAMPLES = {
    'plain_bucket{le="0.1"}': 3.0,
    'plain_bucket{le="+Inf"}': 4.0,
    "plain_count": 4.0,
    'by_phase_bucket{le="0.1",phase="close"}': 1.0,
    'by_phase_bucket{le="+Inf",phase="close"}': 2.0,
    'by_phase_bucket{le="0.1",phase="to_sink"}': 5.0,
    'by_phase_bucket{le="+Inf",phase="to_sink"}': 5.0,
    'by_gen_bucket{generation="2",le="0.01"}': 7.0,
    'by_gen_bucket{generation="2",le="+Inf"}': 8.0,
}


@pytest.mark.parametrize(
    ("name", "labels", "expected"),
    [
        ("plain", None, [(0.1, 3.0), (float("inf"), 4.0)]),
        ("by_phase", {"phase": "close"}, [(0.1, 1.0), (float("inf"), 2.0)]),
        ("by_phase", {"phase": "to_sink"}, [(0.1, 5.0), (float("inf"), 5.0)]),
        ("by_gen", {"generation": "2"}, [(0.01, 7.0), (float("inf"), 8.0)]),
        ("by_gen", {"generation": "0"}, []),
        ("by_phase", None, []),  # a labelled histogram needs its labels
        ("plain", {"phase": "close"}, []),
    ],
)
def test_buckets_of_one_child_whatever_the_label_order(
    name: str, labels: dict[str, str] | None, expected: list[tuple[float, float]]
) -> None:
    assert histogram_buckets(SAMPLES, name, labels) == expected


def test_quantile_is_the_bucket_bound_holding_it() -> None:
    assert histogram_quantile(SAMPLES, "plain", 0.5) == 0.1
    assert histogram_quantile(SAMPLES, "plain", 0.99) == float("inf")
