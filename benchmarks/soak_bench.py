"""Soak benchmark: the server's memory over rounds of 4 KiB overwrites and reads.

    .venv/bin/python benchmarks/soak_bench.py [--rounds 6] [--keys 8000] [--seconds 8]

Each round drives a real ``ostor server`` with wrk over presigned URLs: PUTs
that overwrite the same keys (so deletes, GC and defragmentation run too), then
GETs of them. The server's resident memory (VmRSS) is printed after each phase;
it should level off once the record cache is full, whatever the number of rounds.
Prints, as its last line:
  soak: rounds=<N> rss_start=<MiB> rss_end=<MiB> put_4k_last=<ops/s> get_4k_last=<ops/s>
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway_bench as gb  # noqa: E402  (the server helpers, wrk and the bench keys)


def rss_mib(pid: int) -> int:
    """Resident memory of a process, MiB."""
    with open(f"/proc/{pid}/status") as status:
        line = next(row for row in status if row.startswith("VmRSS:"))
    return int(line.split()[1]) // 1024


def main() -> int:
    """Start a server, run the rounds, print RSS and rates."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--keys", type=int, default=8000,
                        help="4 KiB objects, all overwritten each round (keep it under a round's PUTs)")
    parser.add_argument("--seconds", type=int, default=8, help="wrk duration per phase")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ostor-soak-"))
    try:
        proc, base = gb.start_server(workdir)
        try:
            s3 = gb.presigner(base)
            s3.create_bucket(Bucket=gb.BUCKET)

            def urls(method: str) -> list[str]:
                return [s3.generate_presigned_url(method, Params={"Bucket": gb.BUCKET, "Key": f"soak/{i:07d}"},
                                                  ExpiresIn=6 * 3600)[len(base):] for i in range(args.keys)]

            puts, gets = urls("put_object"), urls("get_object")
            start = rss_mib(proc.pid)
            print(f"start: rss {start} MiB", flush=True)
            put_rate = get_rate = 0.0
            for number in range(args.rounds):
                put_rate, bad_puts = gb.wrk(base, puts, "PUT", workdir, args.seconds)
                after_puts = rss_mib(proc.pid)
                get_rate, bad_gets = gb.wrk(base, gets, "GET", workdir, args.seconds)
                # The first round's GETs may name keys its PUTs did not reach: 404s, counted apart.
                print(f"round {number}: put_4k {put_rate:.0f}/s (non-2xx {bad_puts}), rss {after_puts} MiB; "
                      f"get_4k {get_rate:.0f}/s (non-2xx {bad_gets}), rss {rss_mib(proc.pid)} MiB", flush=True)
            end = rss_mib(proc.pid)
        finally:
            gb.stop(proc)
        print(f"soak: rounds={args.rounds} rss_start={start} rss_end={end} "
              f"put_4k_last={put_rate:.0f} get_4k_last={get_rate:.0f}")
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
