// A seeded LLaMA checkpoint written as a Hugging Face folder (config.json, model.safetensors or
// shards with model.safetensors.index.json, tokenizer.json): small, so that `prune model` can be
// exercised end to end — killed, resumed, starved of disk — in seconds and without the real model;
// or of a real model's shape (`Shape.llama7B`, `Shape.tinyLlama1B`), to measure the pipeline at
// scale. The weights are `SyntheticModel`'s, drawn and written a piece at a time
// (`ShardedSafetensorsWriter`), so a 13.5 GB model is generated in a few MB of memory; the
// tokenizer is byte-level BPE with the 256 byte tokens and no merges (every byte is one token),
// which `BPETokenizer` and transformers both read.

import Foundation
import PruneKernels

/// Writes seeded LLaMA-architecture model folders for tests (`prune make-model`).
public enum SyntheticModelFolder {
  /// The shape of the model.
  public struct Shape: Sendable, Equatable {
    public var layers: Int
    public var hidden: Int
    public var intermediate: Int
    public var heads: Int
    public var keyValueHeads: Int
    /// Rows of the (tied) embedding, at least the tokenizer's 256; more make the model's file
    /// larger without making pruning slower (the fault tests use that to lengthen the output write).
    public var vocabulary: Int
    /// A head of its own (`lm_head.weight`) instead of the embedding's.
    public var untied: Bool

    public init(
      layers: Int = 6, hidden: Int = 128, intermediate: Int = 320, heads: Int = 4, keyValueHeads: Int = 2,
      vocabulary: Int = 256, untied: Bool = false
    ) {
      self.untied = untied
      self.layers = layers
      self.hidden = hidden
      self.intermediate = intermediate
      self.heads = heads
      self.keyValueHeads = keyValueHeads
      self.vocabulary = vocabulary
    }
  }

  /// LLaMA-7B's shape: hidden 4096, 32 blocks, FFN 11008, 32 heads (no grouped KV), vocabulary
  /// 32000, untied head: 6.74B parameters, 13.5 GB in BF16.
  public static let llama7B = Shape(
    layers: 32, hidden: 4096, intermediate: 11008, heads: 32, keyValueHeads: 32, vocabulary: 32000, untied: true)
  /// TinyLlama-1.1B's shape: hidden 2048, 22 blocks, FFN 5632, 32 heads, 4 KV heads, vocabulary
  /// 32000, untied head: 1.10B parameters, 2.2 GB in BF16.
  public static let tinyLlama1B = Shape(
    layers: 22, hidden: 2048, intermediate: 5632, heads: 32, keyValueHeads: 4, vocabulary: 32000, untied: true)
  /// The presets by their `prune make-model --preset` names.
  public static let presets: [(name: String, shape: Shape)] = [("llama-7b", llama7B), ("tinyllama-1b", tinyLlama1B)]

  /// The tokenizer's vocabulary: one token per byte.
  public static let tokenizerSize = 256

  /// The config.json object of a LlamaForCausalLM of `shape` stored as `dtype`.
  public static func config(_ shape: Shape, dtype: SafetensorsDType = .F32) -> [String: Any] {
    [
      "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": shape.hidden,
      "intermediate_size": shape.intermediate, "num_hidden_layers": shape.layers, "num_attention_heads": shape.heads,
      "num_key_value_heads": shape.keyValueHeads, "head_dim": shape.hidden / shape.heads, "hidden_act": "silu",
      "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
      "tie_word_embeddings": !shape.untied,
      "vocab_size": max(shape.vocabulary, tokenizerSize), "bos_token_id": 1, "eos_token_id": 2,
      "torch_dtype": dtype == .BF16 ? "bfloat16" : dtype == .F16 ? "float16" : "float32",
    ]
  }

  /// tokenizer.json: byte-level BPE, 256 byte tokens (GPT-2's byte-to-character table), no merges.
  public static func tokenizerJSON() -> Data {
    let vocab = ByteLevel.byteToCharacter.enumerated().map { b, c in "\(jsonString(String(Character(c)))):\(b)" }
    let text = """
      {"version":"1.0","added_tokens":[],"normalizer":null,\
      "pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},\
      "decoder":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},\
      "model":{"type":"BPE","dropout":null,"unk_token":null,"fuse_unk":false,"byte_fallback":false,\
      "vocab":{\(vocab.joined(separator: ","))},"merges":[]}}

      """
    return Data(text.utf8)
  }

  /// Writes the folder `directory` (created; it must not exist): config.json, the weights (every
  /// tensor `TransformerLM` reads, seeded; `dtype` F32, BF16 or F16, in shards of at most
  /// `maxShardBytes`: model.safetensors when one shard) and tokenizer.json. The values are drawn
  /// and written a million at a time, so memory does not grow with the model. An F32 model in one
  /// shard is byte for byte the file `SafetensorsWriter` writes for `SyntheticModel.tensors`.
  public static func write(
    _ shape: Shape, seed: UInt64, to directory: URL, dtype: SafetensorsDType = .F32,
    maxShardBytes: Int = SafetensorsShardLayout.defaultMaxShardBytes
  ) throws(ExportError) {
    let object = config(shape, dtype: dtype)
    let json: Data
    let forward: ForwardConfig
    do {
      json = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
      forward = try ForwardConfig(data: json, source: directory.appendingPathComponent("config.json").path)
    } catch {
      throw .unsupportedSource(
        path: directory.path, what: "the requested shape is not a valid model (\(ModelFileError(error).message))")
    }
    let manager = FileManager.default
    guard !manager.fileExists(atPath: directory.path) else { throw .destinationExists(path: directory.path) }
    let specs = SyntheticModel.specs(for: forward)
    let byName = Dictionary(uniqueKeysWithValues: specs.map { ($0.name, $0) })
    let layout: SafetensorsShardLayout
    do {
      layout = try SafetensorsShardLayout(
        SafetensorsShardLayout.modelOrder(specs.map(\.name)).map { ($0, dtype, byName[$0]!.shape) },
        maxShardBytes: maxShardBytes, metadata: ["format": "pt"])
    } catch {
      throw .unsupportedSource(
        path: directory.path, what: "the requested shape is not a valid model (\(error.message))")
    }
    let files: [(name: String, data: Data)] = [("config.json", json), ("tokenizer.json", tokenizerJSON())]
    do throws(FolderWriteError<WriteError>) {
      try AtomicOutput.writeFolder(directory, name: .export, replacing: false) { (folder: URL) throws(WriteError) in
        func failed(_ e: SafetensorsError) -> WriteError {
          switch e {
          case .writeFailed(let path, let reason), .unreadable(let path, let reason):
            return WriteError(
              path: directory.appendingPathComponent(URL(fileURLWithPath: path).lastPathComponent).path, reason: reason)
          default: return WriteError(path: directory.path, reason: e.message)
          }
        }
        do throws(SafetensorsError) {
          let writer = try ShardedSafetensorsWriter.create(layout, in: folder)
          defer { writer.close() }
          var rng = SplitMix64(seed: seed)
          let piece = 1 << 20
          for spec in specs {
            var start = 0
            while start < spec.count {
              let n = min(piece, spec.count - start)
              try writer.write(spec.name, spec.values(count: n, using: &rng), startingAt: start)
              start += n
            }
          }
          try writer.synchronize()
          try writer.writeIndex()
        } catch {
          throw failed(error)
        }
        for file in files {
          do throws(WriteError) {
            try AtomicOutput.write(file.data, to: folder.appendingPathComponent(file.name))
          } catch {
            throw WriteError(path: directory.appendingPathComponent(file.name).path, reason: error.reason)
          }
        }
      }
    } catch {
      switch error {
      case .create(let folder, let reason): throw .parentNotWritable(path: folder, reason: reason)
      case .fill(let e), .refused(let e): throw .writeFailed(path: e.path, reason: e.reason)
      case .move(let reason, let exists):
        throw exists ? .destinationExists(path: directory.path) : .writeFailed(path: directory.path, reason: reason)
      }
    }
  }
}
