"""`python -m bench [name ...]`: run every benchmark module (or the named ones); `engine` runs last so
that `engine_overhead_ratio=` is the final line. `gpu` (bench_gpu: paper tasks' steps/s on a GPU, minutes) runs
only when named: `python -m bench gpu` (`make bench-gpu`)."""
from __future__ import annotations

import importlib
import pkgutil
import sys

import bench


def main(argv: list[str]) -> None:
    names = sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    names = [n for n in names if n != "engine"] + (["engine"] if "engine" in names else [])
    unknown = [n for n in argv if n not in names]
    if unknown:
        sys.exit(f"error: unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    on_request = {"gpu"}  # long: only when named
    for name in argv or [n for n in names if n not in on_request]:
        importlib.import_module(f"bench.bench_{name}").main()


if __name__ == "__main__":
    main(sys.argv[1:])
