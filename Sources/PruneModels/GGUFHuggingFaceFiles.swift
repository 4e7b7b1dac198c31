// The Hugging Face side files of a LLaMA GGUF, rebuilt from its metadata for an export:
//
//   config.json              LlamaForCausalLM: the hyper-parameters of `GGUFFile.llamaConfig()`,
//                            float32, tied embeddings when the file has no output.weight
//   tokenizer.json           byte-level BPE as `tokenizers` writes it: the vocabulary in id order,
//                            the merges as pairs in rank order, the added tokens (GGUF token types 3
//                            control → special, 4 user-defined → not special), and the GPT-2
//                            ByteLevel pre-tokenizer (after Digits(individual_digits) for
//                            tokenizer.ggml.pre = "smollm"), post-processor and decoder
//   tokenizer_config.json    PreTrainedTokenizerFast, the BOS/EOS/UNK/PAD strings, no BOS added,
//                            the chat template when the GGUF has one
//   special_tokens_map.json  the same four special tokens
//   generation_config.json   the BOS/EOS/PAD ids
//
// JSON is written by `JSONText` with keys in a fixed order, so the same GGUF gives the same bytes.

import Foundation

enum GGUFHuggingFaceFiles {
  /// The files, named as in a Hugging Face folder.
  static func files(_ gguf: GGUFFile, config: LlamaConfig) throws(ExportError) -> [(name: String, data: Data)] {
    let path = gguf.path
    guard config.modelType == "llama" else {
      throw .unsupportedSource(path: path, what: "architecture '\(config.modelType)' (only llama GGUFs are exported)")
    }
    let tokenizer: BPETokenizer
    let types: [Int]
    let merges: [String]
    do {
      tokenizer = try BPETokenizer(gguf: gguf)
      merges = try gguf.array("tokenizer.ggml.merges").map { $0.string ?? "" }
      types =
        gguf.metadata["tokenizer.ggml.token_type"] != nil
        ? try gguf.array("tokenizer.ggml.token_type").map { $0.int ?? 1 } : []
    } catch {
      throw .source(path: path, .file(ModelFileError(error)))
    }
    var seen: [String: Int] = [:]
    for (id, token) in tokenizer.tokens.enumerated() {
      if let first = seen.updateValue(id, forKey: token) {
        throw .unsupportedSource(
          path: path, what: "token '\(token)' appears as ids \(first) and \(id), which tokenizer.json cannot hold")
      }
    }
    let padding: Int?
    do {
      padding = try gguf.optionalInt("tokenizer.ggml.padding_token_id")
    } catch {
      throw .unsupportedSource(path: path, what: "tokenizer.ggml.padding_token_id is not an integer")
    }
    func token(_ id: Int?) -> JSONText {
      guard let id, id >= 0, id < tokenizer.tokens.count else { return .null }
      return .string(tokenizer.tokens[id])
    }
    func number(_ id: Int?) -> JSONText { id.map { .int($0) } ?? .null }
    let unknown = try? gguf.optionalInt("tokenizer.ggml.unknown_token_id")

    // The RoPE scaling llamaConfig() mapped from llama.cpp's metadata (linear or yarn), with the
    // keys transformers reads; null for plain RoPE (SmolLM2).
    var ropeScaling: JSONText = .null
    if let scaling = config.ropeScaling {
      var keys: [(String, JSONText)] = [("rope_type", .string(scaling.ropeType))]
      if let factor = scaling.factor { keys.append(("factor", .number(factor.description))) }
      if let original = scaling.originalMaxPositionEmbeddings {
        keys.append(("original_max_position_embeddings", .int(original)))
      }
      ropeScaling = .object(keys)
    }
    let configJSON: JSONText = .object([
      ("architectures", .array([.string("LlamaForCausalLM")])),
      ("attention_bias", .bool(config.attentionBias)),
      ("attention_dropout", .number("0.0")),
      ("bos_token_id", number(config.bosTokenId)),
      ("eos_token_id", number(config.eosTokenId?.first)),
      ("head_dim", .int(config.headDim)),
      ("hidden_act", .string(config.hiddenAct)),
      ("hidden_size", .int(config.hiddenSize)),
      ("intermediate_size", .int(config.intermediateSize)),
      ("max_position_embeddings", .int(config.maxPositionEmbeddings)),
      ("mlp_bias", .bool(config.mlpBias)),
      ("model_type", .string("llama")),
      ("num_attention_heads", .int(config.numAttentionHeads)),
      ("num_hidden_layers", .int(config.numHiddenLayers)),
      ("num_key_value_heads", .int(config.numKeyValueHeads)),
      ("pad_token_id", number(padding)),
      // The GGUF holds ε as a float32; its shortest decimal gives back the same float32.
      ("rms_norm_eps", .number(Float(config.rmsNormEps).description)),
      ("rope_scaling", ropeScaling),
      ("rope_theta", .number(config.ropeTheta.description)),
      ("tie_word_embeddings", config.tieWordEmbeddings.map { .bool($0) } ?? .null),  // always set from a GGUF
      ("torch_dtype", .string("float32")),
      ("use_cache", .bool(true)),
      ("vocab_size", .int(config.vocabSize)),
    ])

    var added: [JSONText] = []
    for (id, type) in types.enumerated() where type == 3 || type == 4 {
      added.append(
        .object([
          ("id", .int(id)), ("content", .string(tokenizer.tokens[id])), ("single_word", .bool(false)),
          ("lstrip", .bool(false)), ("rstrip", .bool(false)), ("normalized", .bool(false)),
          ("special", .bool(type == 3)),
        ]))
    }
    func byteLevel(prefixSpace: Bool, trimOffsets: Bool) -> JSONText {
      .object([
        ("type", .string("ByteLevel")), ("add_prefix_space", .bool(prefixSpace)), ("trim_offsets", .bool(trimOffsets)),
        ("use_regex", .bool(true)),
      ])
    }
    let preTokenizer: JSONText =
      tokenizer.preTokenizer.individualDigits
      ? .object([
        ("type", .string("Sequence")),
        (
          "pretokenizers",
          .array([
            .object([("type", .string("Digits")), ("individual_digits", .bool(true))]),
            byteLevel(prefixSpace: false, trimOffsets: true),
          ])
        ),
      ])
      : byteLevel(prefixSpace: false, trimOffsets: true)
    var pairs: [JSONText] = []
    pairs.reserveCapacity(merges.count)
    for m in merges {
      let parts = m.split(separator: " ", omittingEmptySubsequences: false)
      pairs.append(.array(parts.map { .string(String($0)) }))
    }
    let tokenizerJSON: JSONText = .object([
      ("version", .string("1.0")),
      ("truncation", .null),
      ("padding", .null),
      ("added_tokens", .array(added)),
      ("normalizer", .null),
      ("pre_tokenizer", preTokenizer),
      ("post_processor", byteLevel(prefixSpace: true, trimOffsets: false)),
      ("decoder", byteLevel(prefixSpace: true, trimOffsets: true)),
      (
        "model",
        .object([
          ("type", .string("BPE")), ("dropout", .null), ("unk_token", .null), ("continuing_subword_prefix", .null),
          ("end_of_word_suffix", .null), ("fuse_unk", .bool(false)), ("byte_fallback", .bool(false)),
          ("ignore_merges", .bool(false)),
          ("vocab", .object(tokenizer.tokens.enumerated().map { ($1, .int($0)) })),
          ("merges", .array(pairs)),
        ])
      ),
    ])

    var tokenizerConfig: [(String, JSONText)] = [
      ("add_bos_token", .bool(tokenizer.addBOS)),
      ("add_prefix_space", .bool(false)),
      ("bos_token", token(tokenizer.bosTokenId)),
      ("clean_up_tokenization_spaces", .bool(false)),
      ("eos_token", token(tokenizer.eosTokenId)),
      ("model_max_length", .int(config.maxPositionEmbeddings)),
      ("pad_token", token(padding)),
      ("tokenizer_class", .string("PreTrainedTokenizerFast")),
      ("unk_token", token(unknown ?? nil)),
    ]
    if let template = gguf.metadata["tokenizer.chat_template"]?.string {
      tokenizerConfig.insert(("chat_template", .string(template)), at: 2)
    }
    let specialTokens: JSONText = .object([
      ("bos_token", token(tokenizer.bosTokenId)), ("eos_token", token(tokenizer.eosTokenId)),
      ("pad_token", token(padding)), ("unk_token", token(unknown ?? nil)),
    ])
    let generation: JSONText = .object([
      ("bos_token_id", number(config.bosTokenId)), ("eos_token_id", number(config.eosTokenId?.first)),
      ("pad_token_id", number(padding)),
    ])
    return [
      ("config.json", configJSON.data), ("generation_config.json", generation.data),
      ("special_tokens_map.json", specialTokens.data), ("tokenizer.json", tokenizerJSON.data),
      ("tokenizer_config.json", JSONText.object(tokenizerConfig).data),
    ]
  }
}

/// A JSON value whose objects keep their keys in the order given, written with two-space indents
/// (arrays of scalars on one line), so that equal values give equal bytes.
indirect enum JSONText {
  case object([(String, JSONText)])
  case array([JSONText])
  case string(String)
  case int(Int)
  /// A number written as given (a valid JSON number literal).
  case number(String)
  case bool(Bool)
  case null

  /// The UTF-8 text, ending with a newline.
  var data: Data {
    var out = ""
    write(to: &out, indent: "")
    out += "\n"
    return Data(out.utf8)
  }

  private var isScalar: Bool {
    switch self {
    case .object, .array: return false
    default: return true
    }
  }

  private func write(to out: inout String, indent: String) {
    switch self {
    case .object(let members):
      if members.isEmpty {
        out += "{}"
        return
      }
      let inner = indent + "  "
      out += "{\n"
      for (i, (key, value)) in members.enumerated() {
        out += inner + jsonString(key) + ": "
        value.write(to: &out, indent: inner)
        out += i + 1 < members.count ? ",\n" : "\n"
      }
      out += indent + "}"
    case .array(let elements):
      if elements.allSatisfy(\.isScalar) {
        out += "["
        for (i, e) in elements.enumerated() {
          if i > 0 { out += ", " }
          e.write(to: &out, indent: indent)
        }
        out += "]"
        return
      }
      let inner = indent + "  "
      out += "[\n"
      for (i, e) in elements.enumerated() {
        out += inner
        e.write(to: &out, indent: inner)
        out += i + 1 < elements.count ? ",\n" : "\n"
      }
      out += indent + "]"
    case .string(let s): out += jsonString(s)
    case .int(let n): out += String(n)
    case .number(let literal): out += literal
    case .bool(let b): out += b ? "true" : "false"
    case .null: out += "null"
    }
  }
}
