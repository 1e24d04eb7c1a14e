"""Compare engine put_4k of two source trees, run at the same time so host noise hits both.

    .venv/bin/python benchmarks/ab_put4k.py A B [--rounds 6] [--count 10000] [--sequential]

A and B are git revisions (their ``ostor`` package is exported to a temp dir) or
directories holding an ``ostor`` package. Each round starts both measurements
together, alternating which starts first (the first gets a head start worth
about 10% here); the figure is the geometric mean of B/A over the rounds.

On the 2-core VM one sequential run varies by ±15%, so the sequential
``make bench-engine`` cannot show a change of a few percent; run side by side,
the same tree against itself gave 1.006 over 6 rounds. Both runs share the two
cores, so this compares efficiency under load, not the absolute figure.

``--sequential`` runs A and B one after the other instead (alternating which
goes first), each with the machine to itself, as ``make bench-engine`` runs.
That is the comparison to make when a change moves work between threads: side
by side, the other run uses the core a lone run would have had spare.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def export(source: str, target: Path) -> Path:
    """A directory with the ``ostor`` package of ``source`` (a directory, or a git revision exported to ``target``)."""
    if (Path(source) / "ostor").is_dir():
        return Path(source).resolve()
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(HERE.parent), "archive", source, "ostor"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def start(tree: Path, count: int, data: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(tree))
    return subprocess.Popen([sys.executable, __file__, "--child", str(count), str(data)],
                            env=env, stdout=subprocess.PIPE, text=True)


async def child(count: int, data: Path) -> None:
    """One put_4k measurement with the ``ostor`` on PYTHONPATH; prints ops/s."""
    sys.path.insert(0, str(HERE))
    from engine_bench import put_small

    from ostor.engine.engine import Engine

    async with await Engine.open(data) as engine:
        await engine.create_bucket("bench", "bench")
        await put_small(engine, 2000, 32, os.urandom(4096))  # warm-up: guards, caches, pool files
        print(f"{await put_small(engine, count, 32, os.urandom(4096), first=2000):.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--count", type=int, default=10000, help="4 KiB puts per run")
    parser.add_argument("--sequential", action="store_true", help="run A and B one at a time")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ostor-ab-", dir=os.getcwd()))
    try:
        trees = export(args.a, work / "a"), export(args.b, work / "b")  # A and B may be the same
        ratios = []
        for round_ in range(args.rounds):
            order = (0, 1) if round_ % 2 == 0 else (1, 0)
            procs = {}
            for side in order:
                procs[side] = start(trees[side], args.count, work / f"data-{round_}-{side}")
                if args.sequential:
                    procs[side].wait()
            rates = [float(procs[side].communicate()[0].strip()) for side in (0, 1)]
            ratios.append(rates[1] / rates[0])
            print(f"round {round_ + 1}: A {rates[0]:.0f}  B {rates[1]:.0f} ops/s", flush=True)
        print(f"B/A: {math.exp(sum(map(math.log, ratios)) / len(ratios)):.3f} (geometric mean of {len(ratios)})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        import uvloop

        uvloop.run(child(int(sys.argv[2]), Path(sys.argv[3])))
    else:
        main()
