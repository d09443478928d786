"""The CRI container log records the log-shipping tests write (tests/cri_log_support.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.cri_log_support import ContainerLogs, cri_records, cri_timestamp

NS = 1_764_457_322_648_123_400  # 2025-11-29T23:02:02.6481234Z


@pytest.mark.parametrize(
    ("ns", "expected"),
    [
        (NS, "2025-11-29T23:02:02.6481234Z"),
        (1_764_457_322_000_000_000, "2025-11-29T23:02:02Z"),
        (1_764_457_322_000_000_001, "2025-11-29T23:02:02.000000001Z"),
    ],
)
def test_cri_timestamp_is_go_rfc3339nano(ns: int, expected: str) -> None:
    assert cri_timestamp(ns) == expected


@pytest.mark.parametrize(
    ("line", "max_bytes", "expected"),
    [
        (b"hello", 16, [b"F hello"]),
        (b"", 16, [b"F "]),
        (b"abcdefgh", 8, [b"F abcdefgh"]),
        (b"abcdefghi", 8, [b"P abcdefgh", b"F i"]),
        (b"abcdefghijklmnopq", 8, [b"P abcdefgh", b"P ijklmnop", b"F q"]),
    ],
)
def test_cri_records_split_long_lines(line: bytes, max_bytes: int, expected: list[bytes]) -> None:
    prefix = b"2025-11-29T23:02:02.6481234Z stderr "
    assert cri_records("stderr", line, max_bytes, NS) == [prefix + r + b"\n" for r in expected]


def test_spawn_writes_both_streams_with_kubelet_names(tmp_path: Path) -> None:
    logs = ContainerLogs(tmp_path, namespace="ns", max_line_bytes=10)
    proc = logs.spawn(
        "pod-0",
        "app",
        [sys.executable, "-c", "import sys; print('out'); print('e' * 15, file=sys.stderr)"],
        {},
    )
    assert proc.wait(30) == 0
    (link,) = logs.containers.iterdir()
    assert link.name.startswith("pod-0_ns_app-") and link.resolve() == proc.path
    assert proc.path.parent.parent.name.startswith("ns_pod-0_")
    records = sorted(r.split(" ", 1)[1] for r in proc.path.read_text().splitlines())
    assert records == ["stderr F eeeee", "stderr P eeeeeeeeee", "stdout F out"]
    assert logs.partial_records == 1
