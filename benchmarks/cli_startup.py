"""How long `drip --help` takes to start, beside `python -c pass` from the same interpreter.

    python benchmarks/cli_startup.py                 # 60 pairs (~10 s)
    python benchmarks/cli_startup.py --runs 200      # steadier figures

The `drip` console script installed beside ``sys.executable`` (the same venv) runs as a
user runs it, in a new process: `drip --help` and `python -c pass` alternate, one of each
per pair (which one goes first alternates too), each timed from start to exit with
``time.perf_counter``. A few warm-up runs come first (not counted). The figures are the
medians, and the ratio of the two medians is set beside the target: `drip --help` at most
3 times `python -c pass`.

Figures, never pass/fail: this is not a test. tests/test_cli_startup.py keeps what help
imports from growing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 3.0


def drip_script():
    """The `drip` console script of the venv that runs this benchmark."""
    script = Path(sys.executable).parent / "drip"
    if not script.is_file():
        sys.exit(f"no drip console script beside {sys.executable}; install drip into this "
                 "venv (pip install -e .) or run the benchmark with that venv's python")
    return script


def timed(argv, cwd):
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(map(str, argv))} exited {done.returncode}: "
                 f"{done.stderr.decode(errors='replace')}")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60, help="pairs of runs (default 60)")
    parser.add_argument("--warmup", type=int, default=5, help="uncounted pairs first (default 5)")
    args = parser.parse_args()

    commands = {"drip --help": [str(drip_script()), "--help"],
                "python -c pass": [sys.executable, "-c", "pass"]}
    times = {name: [] for name in commands}
    # An empty folder: no .env is found, as on a first run; the environment is this one's.
    with tempfile.TemporaryDirectory() as folder:
        for i in range(args.warmup + args.runs):
            order = list(commands) if i % 2 == 0 else list(reversed(commands))
            for name in order:
                elapsed = timed(commands[name], folder)
                if i >= args.warmup:
                    times[name].append(elapsed)

    drip = statistics.median(times["drip --help"])
    bare = statistics.median(times["python -c pass"])
    ratio = drip / bare
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.runs} pairs, medians:")
    for name, values in times.items():
        print(f"  {name:<15} {statistics.median(values) * 1000:7.1f} ms "
              f"(best {min(values) * 1000:.1f} ms)")
    verdict = "within" if ratio <= TARGET else "over"
    print(f"  ratio {ratio:.2f}x ({verdict} the {TARGET:g}x target)")


if __name__ == "__main__":
    main()
