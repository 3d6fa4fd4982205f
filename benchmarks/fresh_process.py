"""Each benchmark measurement runs in a fresh interpreter on a fresh DuckDB file, so peak RSS is its own."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def measure(module: str, which: str, pair: int, *arguments: str, timeout: float | None = None) -> dict:
    """Run `python -m <module> --one <which> --db <file> <arguments>` and return the JSON line it prints last.

    A measurement still running after `timeout` seconds is stopped and reported as `{"timed_out_after_s": ...}`.
    """
    db = OUT / f"{module.rsplit('.', 1)[-1]}_{which}_{pair}.duckdb"
    db.unlink(missing_ok=True)
    try:
        output = subprocess.run([sys.executable, "-m", module, "--one", which, "--db", str(db), *arguments],
                                check=True, capture_output=True, text=True, timeout=timeout).stdout
    except subprocess.TimeoutExpired:
        return {"timed_out_after_s": timeout}
    finally:
        db.unlink(missing_ok=True)
    return json.loads(output.strip().splitlines()[-1])


def parser(doc: str, contenders: list[str]) -> argparse.ArgumentParser:
    """The options every benchmark takes: how many pairs, and the hidden `--one`/`--db` of a single measurement."""
    arguments = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    arguments.add_argument("--pairs", type=int, default=3)
    arguments.add_argument("--one", choices=contenders)
    arguments.add_argument("--db", type=Path)
    return arguments
