"""Benchmark: how fast the command line answers what needs no fit (issue 22: <= 0.5 s).

``bayesdistill --help``, ``bayesdistill datasets``, ``bayesdistill recommend --help`` and an argument
error, each run as a new process (the installed console script), wall time over 7 runs: median and
max. Python's own start-up is measured alongside (``python -c pass``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = {
    "python -c pass (start-up alone)": [sys.executable, "-c", "pass"],
    "bayesdistill --help": ["--help"],
    "bayesdistill datasets": ["datasets"],
    "bayesdistill recommend --help": ["recommend", "--help"],
    "bayesdistill fit (argument error)": ["fit"],
}
REPEATS = 7
TARGET_S = 0.5


def run() -> dict:
    exe = shutil.which("bayesdistill") or str(Path(sys.executable).with_name("bayesdistill"))
    out = {}
    for label, argv in COMMANDS.items():
        cmd = argv if argv[0] == sys.executable else [exe, *argv]
        times = []
        for _ in range(REPEATS):
            t = time.perf_counter()
            subprocess.run(cmd, capture_output=True, timeout=120)
            times.append(time.perf_counter() - t)
        out[label] = {"median_s": sorted(times)[REPEATS // 2], "max_s": max(times)}
    return out


def markdown(res: dict) -> str:
    lines = [f"### The command line without a fit ({REPEATS} new processes each; target <= {TARGET_S} s)", "",
             "| command | median (s) | max (s) |", "|---|---:|---:|"]
    for label, r in res.items():
        if not label.startswith("_"):
            lines.append(f"| `{label}` | {r['median_s']:.3f} | {r['max_s']:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(run()))
