"""`python -m dataflows.leaders` keeps the cyclic collector off the per-tick path (tune_gc)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import gc
from dataflows.leaders.__main__ import GC_GEN0_THRESHOLD, tune_gc
before = gc.get_freeze_count()
tune_gc()
print(before, gc.get_freeze_count(), gc.get_threshold()[0] == GC_GEN0_THRESHOLD)
"""


def test_tune_gc_freezes_the_start_up_heap_and_raises_the_threshold() -> None:
    # In a fresh interpreter: freezing the test process's heap would change every other test.
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout.split()
    before, after, threshold_set = int(out[0]), int(out[1]), out[2]
    assert before == 0
    assert after > 10_000  # the imported modules, classes and functions
    assert threshold_set == "True"
