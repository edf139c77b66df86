"""Run every benchmark and write ``benchmarks/results.json`` and ``benchmarks/results.md``.

``make bench`` calls this. Select benchmarks with ``python -m benchmarks.run NAME ...``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = {
    "supervised": "benchmarks.bench_supervised",
    "distillation": "benchmarks.bench_distill",
    "allocate": "benchmarks.bench_allocate",
    "calibration": "benchmarks.bench_calibration",
    "compare": "benchmarks.bench_compare",
    "sbc": "benchmarks.bench_sbc",
    "isoflop": "benchmarks.bench_isoflop",
    "pooling": "benchmarks.bench_pooling",
    "kappa": "benchmarks.bench_kappa",
    "cli": "benchmarks.bench_cli",
    "average": "benchmarks.bench_average",
    "reviews": "benchmarks.bench_reviews",
    "evidence": "benchmarks.bench_evidence",
}


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(names=None) -> None:
    import importlib

    names = names or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        sys.exit(f"error: unknown benchmark {unknown}; choose from {list(BENCHES)}")
    path_json = HERE / "results.json"
    results = json.loads(path_json.read_text()) if path_json.exists() else {}
    for name in names:
        mod = importlib.import_module(BENCHES[name])
        print(f"running benchmark {name} ...", flush=True)
        res = mod.run()
        res["_meta"] = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                        "python": platform.python_version()}
        results[name] = {"results": res, "markdown": mod.markdown(res)}
        print(results[name]["markdown"], flush=True)
        _atomic_write(path_json, json.dumps(results, indent=1, default=float))
    md = ["# Benchmark results", "", "Written by `make bench` (benchmarks/run.py).", ""]
    for r in results.values():
        meta = r["results"].get("_meta", {})
        md += [r["markdown"], f"_{meta.get('date', '?')}, {meta.get('machine', '?')}, Python {meta.get('python', '?')}_", ""]
    _atomic_write(HERE / "results.md", "\n".join(md))


if __name__ == "__main__":
    main(sys.argv[1:])
