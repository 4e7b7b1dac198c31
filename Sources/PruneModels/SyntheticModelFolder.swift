// A small seeded LLaMA checkpoint written as a Hugging Face folder (config.json, model.safetensors,
// tokenizer.json), so that `prune model` can be exercised end to end — killed, resumed, starved of
// disk — in seconds and without the real model. The weights are `SyntheticModel`'s; the tokenizer
// is byte-level BPE with the 256 byte tokens and no merges (every byte is one token), which
// `BPETokenizer` and transformers both read.

import Foundation

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

    public init(
      layers: Int = 6, hidden: Int = 128, intermediate: Int = 320, heads: Int = 4, keyValueHeads: Int = 2,
      vocabulary: Int = 256
    ) {
      self.layers = layers
      self.hidden = hidden
      self.intermediate = intermediate
      self.heads = heads
      self.keyValueHeads = keyValueHeads
      self.vocabulary = vocabulary
    }
  }

  /// The tokenizer's vocabulary: one token per byte.
  public static let tokenizerSize = 256

  /// The config.json object of a LlamaForCausalLM of `shape` (tied head).
  public static func config(_ shape: Shape) -> [String: Any] {
    [
      "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": shape.hidden,
      "intermediate_size": shape.intermediate, "num_hidden_layers": shape.layers, "num_attention_heads": shape.heads,
      "num_key_value_heads": shape.keyValueHeads, "head_dim": shape.hidden / shape.heads, "hidden_act": "silu",
      "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true,
      "vocab_size": max(shape.vocabulary, tokenizerSize), "bos_token_id": 1, "eos_token_id": 2,
      "torch_dtype": "float32",
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

  /// Writes the folder `directory` (created; it must not exist): config.json, model.safetensors
  /// (F32, every tensor `TransformerLM` reads, seeded) and tokenizer.json.
  public static func write(_ shape: Shape, seed: UInt64, to directory: URL) throws(ExportError) {
    let object = config(shape)
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
    var writer = SafetensorsWriter(metadata: ["format": "pt"])
    let tensors = SyntheticModel.tensors(for: forward, seed: seed)
    do {
      for (name, t) in tensors.tensors { try writer.add(name, shape: t.shape, .f32(t.values)) }
    } catch {
      throw .unsupportedSource(
        path: directory.path, what: "the requested shape is not a valid model (\(error.message))")
    }
    let files: [(name: String, data: Data)] = [
      ("model.safetensors", writer.serialized()), ("config.json", json), ("tokenizer.json", tokenizerJSON()),
    ]
    do throws(FolderWriteError<WriteError>) {
      try AtomicOutput.writeFolder(directory, name: .export, replacing: false) { (folder: URL) throws(WriteError) in
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
      case .fill(let e): throw .writeFailed(path: e.path, reason: e.reason)
      case .move(let reason, let exists):
        throw exists ? .destinationExists(path: directory.path) : .writeFailed(path: directory.path, reason: reason)
      }
    }
  }
}
