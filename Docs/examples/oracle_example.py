#!/usr/bin/env python3
"""A backend's side of the PruneKit oracle, with numpy only (no PruneKit code, no safetensors package).

Writes a layer-problem file and two candidate pruned weights in the safetensors format, so that
`prune verify` can certify them (Docs/oracle.md#worked-example-a-numpy-backend):

    python3 Docs/examples/oracle_example.py OUT_DIR
    prune verify --problem OUT_DIR/problem.safetensors --candidate OUT_DIR/refit.safetensors --pattern 2:4 --max-gap 1e-6
    prune verify --problem OUT_DIR/problem.safetensors --candidate OUT_DIR/magnitude.safetensors --pattern 2:4 --max-gap 1e-6

The refit candidate passes (it is the exact least-squares solution on its mask); the magnitude
candidate keeps the dense values, so its gap to the refit on its own mask is large and it fails.

With `--solve-suite SUITE ANSWERS` it acts as a tiny backend for a `prune vectors` suite (N:M cases by
enumeration, closed-form lasso cases by soft thresholding):

    prune vectors --out SUITE --no-real
    python3 Docs/examples/oracle_example.py --solve-suite SUITE ANSWERS
    prune verify --manifest SUITE/manifest.json --candidates ANSWERS

The format (https://github.com/huggingface/safetensors): 8 bytes little-endian u64 N, then N bytes
of JSON header {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
then the data buffer: each tensor row-major, little-endian, at its offsets, with no gaps.
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np

DTYPES = {np.dtype("<f2"): "F16", np.dtype("<f4"): "F32", np.dtype("<f8"): "F64", np.dtype("u1"): "U8"}


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: numpy array} (float16, float32, float64 or uint8) as a safetensors file."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        data = a.tobytes()
        header[name] = {"dtype": DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # pad the header to a multiple of 8 bytes
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def read_safetensors(path):
    """Reads a safetensors file into {name: numpy array} (F32, F64, F16, U8)."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    kinds = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "U8": "u1"}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + b : 8 + n + e], dtype=kinds[info["dtype"]]).reshape(info["shape"])
    return out


def two_of_four_mask(scores):
    """Keeps the 2 largest scores in every group of 4 consecutive inputs (ties: lower index pruned first)."""
    m, n = scores.shape
    groups = scores.reshape(m, n // 4, 4)
    order = np.argsort(groups, axis=2, kind="stable")  # ascending: the first two are pruned
    keep = np.ones_like(groups, dtype=bool)
    np.put_along_axis(keep, order[:, :, :2], False, axis=2)
    return keep.reshape(m, n)


def refit(w, g, keep):
    """The exact least-squares weights on the mask: ŵ_S G[S,S] = (w G)_S, row by row."""
    out = np.zeros_like(w)
    c = w @ g
    for i in range(w.shape[0]):
        s = np.flatnonzero(keep[i])
        out[i, s] = np.linalg.solve(g[np.ix_(s, s)], c[i, s])
    return out


def solve_suite(suite, answers):
    """A tiny numpy backend for part of a `prune vectors` suite: the N:M cases by enumerating every
    mask of every row (exact refit by least squares) and the closed-form lasso cases by soft
    thresholding. Writes ANSWERS/<case>/expected.safetensors for `prune verify --manifest --candidates`."""
    import itertools

    manifest = json.loads((Path(suite) / "manifest.json").read_text())
    for case in manifest["cases"]:
        p = read_safetensors(Path(suite) / case["problem"])
        w, g = p["weight"].astype(np.float64), p["gram"].astype(np.float64)
        pattern = case["pattern"]
        if case["kind"] == "lasso-closed-form":
            lam = case["expected"]["lambda"]
            tau = lam / np.diag(g)  # G is diagonal here: Ŵᵢⱼ = soft_{λ/dⱼ}(Wᵢⱼ)
            answer = np.sign(w) * np.maximum(np.abs(w) - tau, 0)
        elif ":" in pattern:
            n_pruned, m = map(int, pattern.split(":"))
            answer = np.zeros_like(w)
            groups = [list(itertools.combinations(range(k, k + m), n_pruned)) for k in range(0, w.shape[1], m)]
            for i in range(w.shape[0]):
                best = None
                for choice in itertools.product(*groups):
                    pruned = {j for group in choice for j in group}
                    s = [j for j in range(w.shape[1]) if j not in pruned]
                    row = np.zeros(w.shape[1])
                    row[s] = np.linalg.lstsq(g[np.ix_(s, s)], (w[i] @ g)[s], rcond=None)[0]
                    d = w[i] - row
                    e = d @ g @ d
                    if best is None or e < best[0]:
                        best = (e, row)
                answer[i] = best[1]
        else:
            continue  # unstructured patterns and real layers: not solved by this sketch
        out = Path(answers) / case["name"]
        out.mkdir(parents=True, exist_ok=True)
        write_safetensors(out / "expected.safetensors", {"weight": answer.astype(np.float32)})
        print(f"{case['name']}: wrote {out / 'expected.safetensors'}")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--solve-suite":
        return solve_suite(sys.argv[2], sys.argv[3])
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "oracle-example")
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    m, n, tokens = 8, 16, 64
    w = rng.uniform(-1, 1, size=(m, n)).astype(np.float32)
    x = rng.normal(size=(tokens, n)) * np.logspace(-1, 1, n)  # outlier-scaled features
    g = x.T @ x  # G = Σ x xᵀ, float64
    g = (g + g.T) / 2
    write_safetensors(
        folder / "problem.safetensors",
        {"weight": w, "gram": g, "count": np.array([tokens], dtype=np.float64)},
        {"generator": "Docs/examples/oracle_example.py"},
    )
    w64 = w.astype(np.float64)
    keep = two_of_four_mask(np.abs(w64))
    write_safetensors(folder / "magnitude.safetensors", {"weight": np.where(keep, w64, 0).astype(np.float32)})
    wr = refit(w64, g, keep)
    write_safetensors(folder / "refit.safetensors", {"weight": wr.astype(np.float32)})
    # The relative error the certificate will report, computed here for comparison.
    for name, cand in (("magnitude", np.where(keep, w64, 0)), ("refit", wr)):
        d = w64 - cand
        print(f"{name}: relative error {np.trace(d @ g @ d.T) / np.trace(w64 @ g @ w64.T):.6e}")
    # Reading back what was written checks the writer against the reader.
    back = read_safetensors(folder / "problem.safetensors")
    assert np.array_equal(back["weight"], w) and np.array_equal(back["gram"], g)
    print(f"wrote {folder}/problem.safetensors, magnitude.safetensors, refit.safetensors")


if __name__ == "__main__":
    main()
