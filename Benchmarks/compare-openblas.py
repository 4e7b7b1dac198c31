#!/usr/bin/env python3
"""Compare PruneKit's kernels with numpy/OpenBLAS on the same shapes, in the same run.

Optional: needs numpy (not a dependency of PruneKit). Usage, from the repository root:

    swift build -c release --product prune-bench
    python3 Benchmarks/compare-openblas.py [--rounds 3] [--threads 1,2] [--only sgemm,dgemm,sgram,dgram]
                                           [--json out.jsonl]

The machine is noisy (shared VM: single runs move by up to 30%), so the two sides are measured in
interleaved rounds (PruneKit 1T, OpenBLAS 1T, PruneKit 2T, OpenBLAS 2T, repeated) and each side's
best median over the rounds is compared: noise only ever slows a run down, so the best round is the
fairest estimate for both. OpenBLAS threads are set with OPENBLAS_NUM_THREADS before numpy loads.
numpy computes the Gram as x.T @ x, which it sends to ?syrk (one triangle), the same work as
PruneKit's Gram kernel; both use the 2mn^2 flop count.

OpenBLAS picks its kernels for the CPU it runs on unless OPENBLAS_CORETYPE forces a core (some
machines set it to Haswell, whose kernels are slower than the SkylakeX ones on an AVX-512 CPU) or
OPENBLAS_L2_SIZE overrides the cache size it blocks for. Both are removed from OpenBLAS's
environment here, so the comparison is with the kernels OpenBLAS would choose itself, and the
core it reports (openblas_get_corename) is printed with the results.
"""
import argparse, json, os, subprocess, sys

NUMPY_BENCH = r'''
import ctypes, json, sys, time
import numpy as np
def openblas_core():
    """The core OpenBLAS's DYNAMIC_ARCH dispatch chose, from the library numpy loaded."""
    with open("/proc/self/maps") as f:
        paths = {l.split()[-1] for l in f if "openblas" in l.split()[-1].lower()}
    for path in sorted(paths):
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename64_",
                     "openblas_get_corename"):
            f = getattr(lib, name, None)
            if f is not None:
                f.restype = ctypes.c_char_p
                return f().decode()
    return "unknown"
print(json.dumps({"openblas_core": openblas_core()}), flush=True)
cases = json.loads(sys.argv[1]); min_runs = int(sys.argv[2]); min_seconds = float(sys.argv[3])
rng = np.random.default_rng(0)
def median_time(f):
    f()
    times = []; start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter(); f(); times.append(time.perf_counter() - t0)
        if len(times) >= 1000: break
    times.sort(); return times[len(times) // 2], len(times)
for c in cases:
    dt = np.float32 if c["kernel"][0] == "s" else np.float64
    if c["kernel"].endswith("gemm"):
        a = rng.uniform(-1, 1, (c["m"], c["k"])).astype(dt); b = rng.uniform(-1, 1, (c["k"], c["n"])).astype(dt)
        sec, runs = median_time(lambda: a @ b)
    else:
        x = rng.uniform(-1, 1, (c["m"], c["n"])).astype(dt)
        sec, runs = median_time(lambda: x.T @ x)
    flops = 2.0 * c["m"] * c["n"] * c["k"]
    print(json.dumps(dict(c, gflops=round(flops / sec / 1e9, 2), median_ms=round(sec * 1e3, 3), runs=runs)), flush=True)
'''

def run_swift(binary, kernels, threads, min_runs, min_seconds):
    cmd = [binary, "kernels", "--json", "--threads", str(threads), "--only", ",".join(kernels),
           "--min-runs", str(min_runs), "--min-seconds", str(min_seconds)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(l) for l in out.splitlines() if l.startswith("{")]

OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

def run_numpy(cases, threads, min_runs, min_seconds):
    env = {k: v for k, v in os.environ.items() if k not in OVERRIDES}
    env.update(OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    payload = json.dumps([{k: c[k] for k in ("kernel", "m", "n", "k")} | {"threads": threads} for c in cases])
    out = subprocess.run([sys.executable, "-c", NUMPY_BENCH, payload, str(min_runs), str(min_seconds)],
                         check=True, capture_output=True, text=True, env=env).stdout
    rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    return rows[0]["openblas_core"], rows[1:]

def key(c):
    return (c["kernel"], c["m"], c["n"], c["k"], c["threads"])

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--only", default="sgemm,dgemm,sgram,dgram")
    p.add_argument("--min-runs", type=int, default=5)
    p.add_argument("--min-seconds", type=float, default=1.0)
    p.add_argument("--binary", default=".build/release/prune-bench")
    p.add_argument("--json", help="write the comparison as JSON lines to this file")
    a = p.parse_args()
    kernels = a.only.split(","); threads = [int(t) for t in a.threads.split(",")]
    best = {"swift": {}, "openblas": {}}
    for name in OVERRIDES:
        if name in os.environ:
            print(f"{name}={os.environ[name]} is set: removed for OpenBLAS, which picks its own kernels",
                  file=sys.stderr)
    core = "unknown"
    for r in range(a.rounds):
        for t in threads:
            print(f"round {r + 1}/{a.rounds}, {t} thread(s): PruneKit", file=sys.stderr, flush=True)
            sw = run_swift(a.binary, kernels, t, a.min_runs, a.min_seconds)
            print(f"round {r + 1}/{a.rounds}, {t} thread(s): OpenBLAS", file=sys.stderr, flush=True)
            core, nb = run_numpy(sw, t, a.min_runs, a.min_seconds)
            for side, rows in (("swift", sw), ("openblas", nb)):
                for c in rows:
                    k = key(c)
                    if k not in best[side] or c["gflops"] > best[side][k]["gflops"]:
                        best[side][k] = c
    rows = []
    print(f"OpenBLAS core: {core}")
    print(f"{'kernel':6} {'shape':>22} {'thr':>3} {'PruneKit':>9} {'OpenBLAS':>9} {'ratio':>6}")
    for k in best["swift"]:
        s, o = best["swift"][k], best["openblas"].get(k)
        if o is None: continue
        ratio = s["gflops"] / o["gflops"]
        shape = f"{k[1]}x{k[3]}.{k[3]}x{k[2]}" if k[0].endswith("gemm") else f"X {k[1]}x{k[2]}"
        print(f"{k[0]:6} {shape:>22} {k[4]:>3} {s['gflops']:>9.1f} {o['gflops']:>9.1f} {ratio:>6.2f}")
        rows.append({"kernel": k[0], "m": k[1], "n": k[2], "k": k[3], "threads": k[4],
                     "prunekit_gflops": s["gflops"], "openblas_gflops": o["gflops"], "ratio": round(ratio, 3),
                     "openblas_core": core})
    if a.json:
        with open(a.json, "w") as f:
            for r in rows: f.write(json.dumps(r) + "\n")

if __name__ == "__main__":
    main()
