#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets: Fixtures/fuzz/<target>/corpus/*.

Small valid files (and a few near-valid ones) of each format, so the fuzzer starts from inputs
that reach deep into the parsers. Standard library only; deterministic (rerunning rewrites the
same bytes). Run from anywhere:  python3 Tests/Fuzz/make_seeds.py
"""
import json
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Fixtures", "fuzz")


def write(target, name, data):
    folder = os.path.join(OUT, target, "corpus")
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


# -- safetensors --------------------------------------------------------------------------------

DTYPE_SIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
              "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}


def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, raw bytes) laid out in the given order."""
    header = {}
    offset = 0
    buffer = b""
    for name, dtype, shape, raw in tensors:
        count = 1
        for d in shape:
            count *= d
        assert len(raw) == count * DTYPE_SIZE[dtype], name
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        buffer += raw
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + buffer


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def f64(values):
    return struct.pack("<%dd" % len(values), *values)


def half(values):
    return struct.pack("<%de" % len(values), *values)


def bf16(values):
    return b"".join(struct.pack("<f", v)[2:] for v in values)


# -- GGUF ---------------------------------------------------------------------------------------

U8, I8, U16, I16, U32, I32, F32T, BOOL, STR, ARR, U64, I64, F64T = range(13)
SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32T: "<f", BOOL: "<B",
          U64: "<Q", I64: "<q", F64T: "<d"}


def gstr(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def gvalue(t, v):
    if t == STR:
        return gstr(v)
    if t == ARR:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(gvalue(et, x) for x in items)
    return struct.pack(SCALAR[t], v)


def gguf(metadata, tensors, alignment=32, version=3):
    """metadata: list of (key, type, value); tensors: list of (name, ne innermost first, ggml type,
    raw bytes)."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(metadata))
    for k, t, v in metadata:
        out += gstr(k) + struct.pack("<I", t) + gvalue(t, v)
    offsets = []
    cursor = 0
    for _, _, _, raw in tensors:
        offsets.append(cursor)
        cursor += len(raw)
        cursor += -cursor % alignment
    for (name, dims, gtype, _), off in zip(tensors, offsets):
        out += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", gtype, off)
    out += b"\0" * (-len(out) % alignment)
    data_start = len(out)
    for (_, _, _, raw), off in zip(tensors, offsets):
        out += b"\0" * (data_start + off - len(out)) + raw
    out += b"\0" * (-(len(out) - data_start) % alignment)
    return out


def q8_0(blocks):
    return b"".join(struct.pack("<e", 0.5) + bytes((i * 7 + b) % 256 for i in range(32)) for b in range(blocks))


def q4_0(blocks):
    return b"".join(struct.pack("<e", 0.25) + bytes((i * 13 + b) % 256 for i in range(16)) for b in range(blocks))


def q4_1(blocks):
    return b"".join(struct.pack("<ee", 0.125, -1.0) + bytes((i * 11 + b) % 256 for i in range(16))
                    for b in range(blocks))


def blocks_with_halves(blocks, size, halves, mul):
    """`blocks` blocks of `size` patterned bytes whose half floats (offset, value) are set."""
    out = b""
    for b in range(blocks):
        block = bytearray((i * mul + 3 * b) % 256 for i in range(size))
        for at, value in halves:
            block[at:at + 2] = struct.pack("<e", value)
        out += bytes(block)
    return out


def quant_types_gguf():
    """One tensor of every quantised type beyond Q8_0/Q4_0/Q4_1: Q5_0, Q5_1, IQ4_NL and the
    K-quants (super-blocks of 256 weights; Q4_K and Q6_K two rows). Layouts: GGUFQuants.swift."""
    tensors = [
        ("q5_0", [64], 6, blocks_with_halves(2, 22, [(0, 0.25)], 5)),
        ("q5_1", [32], 7, blocks_with_halves(1, 24, [(0, 0.125), (2, -1.0)], 9)),
        ("iq4_nl", [32], 20, blocks_with_halves(1, 18, [(0, 0.01)], 13)),
        ("q2_k", [256], 10, blocks_with_halves(1, 84, [(80, 0.5), (82, 0.25)], 7)),
        ("q3_k", [256], 11, blocks_with_halves(1, 110, [(108, 0.125)], 11)),
        ("q4_k", [256, 2], 12, blocks_with_halves(2, 144, [(0, 0.0625), (2, 0.5)], 17)),
        ("q5_k", [256], 13, blocks_with_halves(1, 176, [(0, -0.03125), (2, 2.0)], 19)),
        ("q6_k", [256, 2], 14, blocks_with_halves(2, 210, [(208, 0.015625)], 23)),
    ]
    return gguf([("general.architecture", STR, "llama")], tensors)


# A tiny byte-level alphabet: the printable ASCII bytes as GPT-2 maps them ("Ġ" is the space).
ALPHABET = [chr(b) for b in range(33, 127)] + ["Ġ", "Ċ", "ĉ"]
MERGED = ["Ġt", "he", "Ġthe", "lo", "low", "er", "th", "Ġw", "or", "ld"]
MERGES = ["Ġ t", "h e", "Ġt he", "l o", "lo w", "e r", "t h", "Ġ w", "o r", "l d"]
SPECIAL = "<|end|>"


def llama_gguf(arch="llama", pre="smollm", with_tokenizer=True, tied=True):
    hidden, heads, kv, ffn, vocab = 32, 4, 2, 32, len(ALPHABET) + len(MERGED) + 1
    head_dim = hidden // heads
    md = [
        ("general.architecture", STR, arch),
        ("general.name", STR, "fuzz-seed"),
        ("general.alignment", U32, 32),
        (arch + ".context_length", U32, 64),
        (arch + ".embedding_length", U32, hidden),
        (arch + ".feed_forward_length", U32, ffn),
        (arch + ".block_count", U32, 1),
        (arch + ".attention.head_count", U32, heads),
        (arch + ".attention.head_count_kv", U32, kv),
        (arch + ".attention.layer_norm_rms_epsilon", F32T, 1e-5),
        (arch + ".rope.freq_base", F32T, 10000.0),
        (arch + ".vocab_size", U32, vocab),
    ]
    if with_tokenizer:
        tokens = ALPHABET + MERGED + [SPECIAL]
        md += [
            ("tokenizer.ggml.model", STR, "gpt2"),
            ("tokenizer.ggml.pre", STR, pre),
            ("tokenizer.ggml.tokens", ARR, (STR, tokens)),
            ("tokenizer.ggml.token_type", ARR, (I32, [1] * (len(tokens) - 1) + [3])),
            ("tokenizer.ggml.merges", ARR, (STR, MERGES)),
            ("tokenizer.ggml.bos_token_id", U32, len(tokens) - 1),
            ("tokenizer.ggml.eos_token_id", U32, len(tokens) - 1),
            ("tokenizer.ggml.add_bos_token", BOOL, 0),
        ]
    tensors = [
        ("token_embd.weight", [hidden, vocab], 8, q8_0(hidden * vocab // 32)),
        ("output_norm.weight", [hidden], 28, f64([1.0] * hidden)),
        ("blk.0.attn_norm.weight", [hidden], 0, f32([1.0] * hidden)),
        ("blk.0.ffn_norm.weight", [hidden], 1, half([1.0] * hidden)),
        ("blk.0.attn_q.weight", [hidden, hidden], 2, q4_0(hidden * hidden // 32)),
        ("blk.0.attn_k.weight", [hidden, kv * head_dim], 3, q4_1(hidden * kv * head_dim // 32)),
        ("blk.0.attn_v.weight", [hidden, kv * head_dim], 30, bf16([0.5] * hidden * kv * head_dim)),
        ("blk.0.attn_output.weight", [hidden, hidden], 8, q8_0(hidden * hidden // 32)),
        ("blk.0.ffn_gate.weight", [hidden, ffn], 3, q4_1(hidden * ffn // 32)),
        ("blk.0.ffn_up.weight", [hidden, ffn], 2, q4_0(hidden * ffn // 32)),
        ("blk.0.ffn_down.weight", [ffn, hidden], 1, half([0.25] * ffn * hidden)),
    ]
    if not tied:
        tensors.append(("output.weight", [hidden, vocab], 2, q4_0(hidden * vocab // 32)))
    return gguf(md, tensors)


# -- tokenizer.json -----------------------------------------------------------------------------

def tokenizer_json(merges_as_pairs=False, digits=True, added=True, prefix_space=False, ignore_merges=None):
    vocab = {t: i for i, t in enumerate(ALPHABET + MERGED)}
    merges = [m.split(" ") for m in MERGES] if merges_as_pairs else MERGES
    byte_level = {"type": "ByteLevel", "add_prefix_space": prefix_space, "trim_offsets": True, "use_regex": True}
    if digits:
        pre = {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, byte_level]}
    else:
        pre = byte_level
    model = {"type": "BPE", "dropout": None, "unk_token": None, "vocab": vocab, "merges": merges}
    if ignore_merges is not None:
        model["ignore_merges"] = ignore_merges
    doc = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": len(vocab), "content": SPECIAL, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}] if added else [],
        "normalizer": None,
        "pre_tokenizer": pre,
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True},
        "model": model,
    }
    return json.dumps(doc, ensure_ascii=False, indent=1)


# -- main ---------------------------------------------------------------------------------------

def main():
    # safetensors: every dtype the reader knows, metadata, a scalar, an empty tensor, F16/BF16.
    write("safetensors", "f32-two-tensors.safetensors",
          safetensors([("a", "F32", [2, 3], f32([1, -2, 3.5, 0, 1e-3, -0.0])), ("b", "U8", [4], bytes([0, 1, 2, 255]))]))
    write("safetensors", "metadata-f16-bf16.safetensors",
          safetensors([("h", "F16", [2, 2], half([1, -2, 0.5, 65504])), ("z", "BF16", [3], bf16([1, -1, 3.0]))],
                      metadata={"format": "pt", "note": "naïve \"quoted\""}))
    write("safetensors", "ints-bool-scalar.safetensors",
          safetensors([("b", "BOOL", [3], bytes([1, 0, 1])), ("e", "F32", [0, 4], b""), ("i32", "I32", [2], struct.pack("<ii", -7, 9)),
                       ("i64", "I64", [1], struct.pack("<q", -(2 ** 40))), ("s", "F64", [], f64([2.5])),
                       ("u16", "U16", [1], struct.pack("<H", 7))]))
    write("safetensors", "empty-header.safetensors", safetensors([]))
    write("safetensors", "f64-matrix.safetensors", safetensors([("m", "F64", [3, 2], f64([1, 2, 3, 4, 5, 6]))]))

    # GGUF: a one-block LLaMA with every decodable tensor type and a tokenizer; variants.
    write("gguf", "llama-tiny-tokenizer.gguf", llama_gguf())
    write("gguf", "qwen2-untied-no-tokenizer.gguf", llama_gguf(arch="qwen2", with_tokenizer=False, tied=False))
    write("gguf", "metadata-only.gguf", gguf(
        [("general.architecture", STR, "gpt2"), ("t.nested", ARR, (ARR, [(U8, [1, 2]), (F32T, [])])),
         ("t.i64", I64, -5), ("t.f64", F64T, 0.1), ("t.u16", U16, 7), ("t.i16", I16, -7), ("t.i8", I8, -1),
         ("t.bool", BOOL, 1), ("t.strings", ARR, (STR, ["a", "", "🙂"]))], [], version=2))
    write("gguf", "empty.gguf", gguf([], []))
    write("gguf", "quant-types.gguf", quant_types_gguf())
    # llama.cpp's RoPE scaling metadata (GGUFFile.llamaConfig maps it to rope_scaling yarn).
    write("gguf", "rope-scaling-yarn.gguf", gguf(
        [("general.architecture", STR, "llama"), ("llama.embedding_length", U32, 8), ("llama.block_count", U32, 1),
         ("llama.feed_forward_length", U32, 16), ("llama.attention.head_count", U32, 2),
         ("llama.context_length", U32, 256), ("llama.attention.layer_norm_rms_epsilon", F32T, 1e-5),
         ("llama.vocab_size", U32, 10), ("llama.rope.freq_base", F32T, 10000.0),
         ("llama.rope.scaling.type", STR, "yarn"), ("llama.rope.scaling.factor", F32T, 4.0),
         ("llama.rope.scaling.original_context_length", U32, 64)], []))

    # config.json: the three golden tiny models, and variants of the LLaMA one.
    for family in ["llama", "opt", "gpt2"]:
        with open(os.path.join(ROOT, "Fixtures", "golden", family + "-tiny", "config.json"), "rb") as f:
            write("config-json", family + "-tiny.json", f.read())
    write("config-json", "smollm2-like.json", json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 576,
        "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
        "num_key_value_heads": 3, "rms_norm_eps": 1e-05, "rope_theta": 100000, "rope_scaling": None,
        "max_position_embeddings": 8192, "vocab_size": 49152, "tie_word_embeddings": True,
        "bos_token_id": 1, "eos_token_id": [2, 0], "hidden_act": "silu", "attention_bias": False}))
    write("config-json", "mistral-window.json", json.dumps({
        "model_type": "mistral", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 100, "sliding_window": None,
        "rope_scaling": {"type": "linear", "factor": 2.0}}))
    write("config-json", "llama3-scaling.json", json.dumps({
        "model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "vocab_size": 100, "max_position_embeddings": 131072, "rope_theta": 500000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192}}))
    write("config-json", "yarn-scaling.json", json.dumps({
        "model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
        "rope_parameters": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768,
                            "beta_fast": 32, "beta_slow": 1, "rope_theta": 1000000.0},
        "use_sliding_window": True, "sliding_window": 4096, "max_window_layers": 2}))
    write("config-json", "gpt2-null-inner.json", json.dumps({
        "model_type": "gpt2", "n_embd": 32, "n_layer": 1, "n_head": 4, "n_inner": None, "vocab_size": 50,
        "n_positions": 16, "activation_function": "gelu", "scale_attn_by_inverse_layer_idx": True}))

    # tokenizer.json: merges as strings and as pairs, with and without Digits, an added token.
    write("tokenizer-json", "bpe-digits-strings.json", tokenizer_json())
    write("tokenizer-json", "bpe-pairs-plain.json", tokenizer_json(merges_as_pairs=True, digits=False, prefix_space=True))
    write("tokenizer-json", "bpe-ignore-merges.json", tokenizer_json(added=False, ignore_merges=True))

    # Layer-problem files (and a mask file): every combination of the contract.
    w = f32([0.5, -1, 2, 0.25, 1, 0, -0.5, 3])  # [2, 4]
    x = f32([1, 0, 2, -1, 0.5, 1, 0, 2, -1, 1, 1, 0])  # [3, 4]
    g = f64([4, 1, 0, 0, 1, 3, 1, 0, 0, 1, 2, 0.5, 0, 0, 0.5, 1])  # [4, 4], symmetric
    write("layer-problem", "weight-inputs.safetensors", safetensors([("inputs", "F32", [3, 4], x), ("weight", "F32", [2, 4], w)]))
    write("layer-problem", "weight-gram-count.safetensors",
          safetensors([("count", "F64", [1], f64([3])), ("gram", "F64", [4, 4], g), ("weight", "F32", [2, 4], w)]))
    write("layer-problem", "error-corrected-grams.safetensors",
          safetensors([("cross_gram", "F64", [4, 4], g), ("dense_gram", "F64", [4, 4], g), ("gram", "F64", [4, 4], g),
                       ("weight", "F16", [2, 4], half([0.5, -1, 2, 0.25, 1, 0, -0.5, 3]))]))
    write("layer-problem", "pruned-inputs-bf16.safetensors",
          safetensors([("inputs", "BF16", [3, 4], bf16([1, 0, 2, -1, 0.5, 1, 0, 2, -1, 1, 1, 0])),
                       ("pruned_inputs", "F32", [3, 4], x), ("weight", "F64", [2, 4], f64([0.5, -1, 2, 0.25, 1, 0, -0.5, 3]))],
                      metadata={"layer": "model.layers.0.mlp.up_proj"}))
    write("layer-problem", "mask.safetensors", safetensors([("mask", "U8", [2, 4], bytes([1, 0, 1, 1, 0, 0, 1, 0]))]))


if __name__ == "__main__":
    main()
