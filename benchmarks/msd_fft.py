"""MSD by FFT (Wiener-Khinchin) vs the direct double loop over lags and time origins.

Workload: a random walk of ``--atoms`` particles over ``--frames`` frames (default 10^4 x 64).
Both are timed here, in this process, on this machine. :func:`electrolytes.transport.msd_fft`
computes the MSD at every lag. The direct loop (:func:`electrolytes.transport.msd_direct`,
numpy-vectorised over origins and atoms: O(T²) work) is timed on ``--lags`` lags spread
evenly over ``0 .. T-1`` and extrapolated to all T lags: its cost per lag is linear in the
number of origins ``T - k``, whose mean over evenly spread lags equals the mean over all lags,
so ``time(all) ~ time(subset) x T / n_lags``. The two agree on the subset (checked).

    .venv/bin/python benchmarks/msd_fft.py [--frames 10000] [--atoms 64] [--lags 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from electrolytes.transport import msd_direct, msd_fft


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--atoms", type=int, default=64)
    ap.add_argument("--lags", type=int, default=200, help="lags timed in the direct loop")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(scale=0.1, size=(args.frames, args.atoms, 3)), axis=0)
    msd_fft(x[:100])  # warm-up (imports, FFT plans)
    t0 = time.perf_counter()
    fft = msd_fft(x)
    t_fft = time.perf_counter() - t0
    lags = np.unique(np.linspace(0, args.frames - 1, args.lags).astype(int))
    t0 = time.perf_counter()
    direct = msd_direct(x, lags)
    t_sub = time.perf_counter() - t0
    t_direct = t_sub * args.frames / len(lags)
    err = float(np.abs(fft[lags] - direct).max() / direct.max())
    row = {"frames": args.frames, "atoms": args.atoms, "fft_s": t_fft,
           "direct_subset_s": t_sub, "direct_lags_timed": len(lags),
           "direct_all_lags_s_extrapolated": t_direct, "ratio": t_direct / t_fft,
           "max_rel_difference": err}
    print(f"{args.frames} frames x {args.atoms} atoms")
    print(f"FFT, all {args.frames} lags: {t_fft:.3f} s")
    print(f"direct loop, {len(lags)} lags timed: {t_sub:.3f} s")
    print(f"direct loop, all lags (extrapolated): {t_direct:.3f} s")
    print(f"ratio direct / FFT: {row['ratio']:.0f}x   (max relative difference {err:.1e})")
    if args.json:
        print(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
