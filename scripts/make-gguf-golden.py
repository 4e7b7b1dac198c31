#!/usr/bin/env python3
"""Writes the golden files of GGUF tensor decoding: Fixtures/golden/gguf-quants/<TYPE>.blocks (stored
blocks) and <TYPE>.f32 (what gguf-py dequantises them to, little-endian float32), one pair per
type that GGUFFile decodes, and manifest.json (tool versions, seeds, block counts, sha256).

Optional tool: it needs gguf (gguf-py, llama.cpp's Python package) and numpy, which are NOT project
dependencies. Use a throwaway virtual environment; CI never runs this script, the tests only read
its output (Tests/PruneFormatsTests/GGUFQuantsTests.swift):

    python3 -m venv /tmp/venv-gguf
    /tmp/venv-gguf/bin/pip install gguf numpy
    /tmp/venv-gguf/bin/python scripts/make-gguf-golden.py [--out DIR] [--scale N]

The blocks are random bytes (a seeded numpy generator per type, so a rerun with the same versions
rewrites the same bytes) except their half-float scales (d, dmin, m), which are always finite: a
standard normal times 2^e with e drawn from -24...11, rounded to half and kept within ±65504. The
first blocks of each type are edge cases: the largest half scale, the smallest subnormal one,
signed zeros, and quants all ones or all zeros. F16 and BF16 "blocks" are single values: random
bit patterns other than NaN. --scale N multiplies the block counts (for a one-off larger check,
written to another --out folder; the committed files use 1).
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np

try:
    import gguf
    from gguf import GGMLQuantizationType as T
    from gguf.constants import GGML_QUANT_SIZES
    from gguf.quants import dequantize
except ImportError:
    sys.exit("make-gguf-golden: gguf-py is not installed. Hint: /tmp/venv-gguf/bin/pip install gguf numpy")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# type → (blocks written, byte offsets of the half-float scales in a block). The offsets follow the
# layouts in Sources/PruneFormats/GGUFQuants.swift.
TYPES = {
    "Q8_0": (32, [0]),
    "Q4_0": (32, [0]),
    "Q4_1": (32, [0, 2]),
    "Q5_0": (32, [0]),
    "Q5_1": (32, [0, 2]),
    "IQ4_NL": (32, [0]),
    "Q2_K": (8, [80, 82]),
    "Q3_K": (8, [108]),
    "Q4_K": (8, [0, 2]),
    "Q5_K": (8, [0, 2]),
    "Q6_K": (8, [208]),
    "F16": (512, []),
    "BF16": (512, []),
}

HALF_MAX = 0x7BFF  # 65504
HALF_MIN_SUBNORMAL = 0x0001  # 2^-24
SIGN = 0x8000


def random_halves(rng, n):
    """n finite half floats as uint16 bit patterns: normal · 2^e, e in -24...11, rounded to half."""
    v = rng.standard_normal(n) * np.exp2(rng.integers(-24, 12, n).astype(np.float64))
    return np.clip(v, -65504, 65504).astype(np.float16).view(np.uint16)


def make_blocks(name, blocks, scale_offsets, seed):
    qtype = T[name]
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size=(blocks, type_size), dtype=np.uint8)
    if name in ("F16", "BF16"):
        bits = raw.view(np.uint16).reshape(-1)
        # An exponent of all ones with a non-zero mantissa is a NaN: replace it by ±infinity.
        exp_mask, mant_mask = (0x7C00, 0x03FF) if name == "F16" else (0x7F80, 0x007F)
        nan = ((bits & exp_mask) == exp_mask) & ((bits & mant_mask) != 0)
        bits[nan] = (bits[nan] & SIGN) | exp_mask
        return raw.reshape(-1)
    halves = random_halves(rng, blocks * len(scale_offsets)).reshape(blocks, len(scale_offsets))
    # Edge cases in the first blocks: (scales, quant bytes) where None keeps the random value.
    edges = [
        ([HALF_MAX, HALF_MAX | SIGN], 0xFF),  # the largest products, the largest subtracted min
        ([HALF_MIN_SUBNORMAL, HALF_MIN_SUBNORMAL | SIGN], None),  # subnormal halves
        ([SIGN, 0x0000], None),  # d = −0, min = +0
        ([0x3C00, 0x3C00], 0x00),  # d = 1, min = 1, every quant field zero
    ]
    for b, (scales, fill) in enumerate(edges[:blocks]):
        if fill is not None:
            raw[b, :] = fill
        for k in range(len(scale_offsets)):
            halves[b, k] = scales[k]
    for b in range(blocks):
        for k, at in enumerate(scale_offsets):
            raw[b, at:at + 2] = np.frombuffer(int(halves[b, k]).to_bytes(2, "little"), dtype=np.uint8)
    return raw.reshape(-1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "Fixtures", "golden", "gguf-quants"))
    ap.add_argument("--scale", type=int, default=1)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    manifest = {
        "made_with": {"gguf": gguf.__version__ if hasattr(gguf, "__version__") else version("gguf"),
                      "numpy": np.__version__},
        "script": "scripts/make-gguf-golden.py",
        "types": {},
    }
    for i, (name, (blocks, scale_offsets)) in enumerate(TYPES.items()):
        seed = 1000 + i
        raw = make_blocks(name, blocks * args.scale, scale_offsets, seed)
        values = dequantize(raw, T[name]).astype(np.float32, copy=False).reshape(-1)
        assert np.all(np.isfinite(values)) or name in ("F16", "BF16"), name
        files = {}
        for suffix, data in ((".blocks", raw.tobytes()), (".f32", values.astype("<f4").tobytes())):
            path = os.path.join(args.out, name + suffix)
            with open(path, "wb") as f:
                f.write(data)
            files[suffix] = hashlib.sha256(data).hexdigest()
        manifest["types"][name] = {
            "blocks": blocks * args.scale, "values": int(values.size), "seed": seed,
            "sha256_blocks": files[".blocks"], "sha256_f32": files[".f32"],
        }
        print(f"{name:7} {blocks * args.scale:6} blocks  {values.size:7} values", file=sys.stderr)
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


def version(package):
    from importlib.metadata import version as v
    return v(package)


if __name__ == "__main__":
    main()
