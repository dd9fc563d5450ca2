"""How many CPUs this container may use: sizes gunicorn's workers and the monitor's processes alike."""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def available_cpus(cgroup: Path = CGROUP) -> int:
    """The container's cgroup CPU quota (docker --cpus, EasyPanel limits), rounded up, or the CPUs it sees."""
    visible = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        if (cgroup / "cpu.max").exists():  # cgroup v2: "<quota> <period>" or "max <period>"
            quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        else:  # cgroup v1: a quota of -1 means none
            quota, period = ((cgroup / "cpu" / name).read_text() for name in ("cpu.cfs_quota_us", "cpu.cfs_period_us"))
        return max(1, min(visible, math.ceil(int(quota) / int(period)))) if int(quota) > 0 else visible
    except (OSError, ValueError):  # no cgroup files, or "max": no quota
        return visible
