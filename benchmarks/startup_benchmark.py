"""Time how long ``okr-sync`` takes to start: the median wall time of a few commands.

    python benchmarks/startup_benchmark.py --runs 10

Each run is a fresh interpreter (``sys.executable -c``) that calls the CLI's
``main`` with the command's arguments, so the numbers include Python's own start
and every import the command makes. Run it with ``PYTHONPATH`` pointing at the
checkout to time that checkout rather than the installed package. Prints one
line per command and then one JSON document; timings are for comparison on one
machine, not assertions.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEMO_PLAN = Path(__file__).resolve().parents[1] / "src/okr_sync/config/examples/demo.yaml"

_DRIVER = (
    "import sys\n"
    "from okr_sync.cli.main import main\n"
    "sys.argv = ['okr-sync', *sys.argv[1:]]\n"
    "main(sys.argv[1:])\n"
)

COMMANDS: dict[str, list[str]] = {
    "--help": ["--help"],
    "--version": ["--version"],
    "validate": ["validate", "--plan", str(DEMO_PLAN)],
}


def time_command(args: list[str], runs: int) -> float:
    """The median wall time, in seconds, of ``runs`` fresh starts of ``okr-sync ARGS``."""
    seconds: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        # A command this build lacks (--version before it existed) still times the start-up.
        subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
            [sys.executable, "-c", _DRIVER, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    results = {name: round(time_command(argv, args.runs), 3) for name, argv in COMMANDS.items()}
    for name, seconds in results.items():
        print(f"{name}: {seconds:.2f} s")
    print(json.dumps({"runs": args.runs, "median_seconds": results}))


if __name__ == "__main__":
    main()
