"""The process-tree memory sampler sees memory held by child processes."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from radioseg_utils.core.memory import TreeMemory, tree_rss_bytes

_HOLD = "import sys, time; b = bytearray(300_000_000); b[::4096] = b'x' * len(b[::4096]); " \
        "print('ready', flush=True); time.sleep(float(sys.argv[1]))"


def test_tree_memory_counts_a_child_process_that_the_parent_alone_does_not_show():
    with TreeMemory(interval=0.05) as memory:
        with subprocess.Popen([sys.executable, "-c", _HOLD, "1.0"], stdout=subprocess.PIPE,
                              text=True) as child:
            assert child.stdout.readline().strip() == "ready"
            own, tree = tree_rss_bytes()
            child.wait(timeout=30)
    assert tree - own >= 290e6
    assert memory.peak_mb - memory.peak_own_mb >= 290
    assert memory.samples >= 3 and memory.runtime_s >= 0.9


def test_tree_memory_peak_is_the_peak_not_the_end():
    with TreeMemory(interval=0.02) as memory:
        block = bytearray(200_000_000)
        block[::4096] = b"x" * len(block[::4096])
        time.sleep(0.2)
        del block
        time.sleep(0.2)
        _, after = tree_rss_bytes()
    assert memory.peak_mb * 1e6 - after >= 150e6


def test_tree_memory_rejects_a_bad_interval():
    with pytest.raises(ValueError, match="interval"):
        TreeMemory(interval=0)
