/// Why a model could not be built from its tensors or run on an input; each description is one
/// line naming the tensor, layer or token, with a `Hint:`.
public enum ForwardError: PruneKitError, Equatable {
  /// The checkpoint lacks a tensor the architecture needs.
  case missingTensor(name: String, architecture: String)
  /// A tensor's shape is not the one the config implies.
  case shapeMismatch(name: String, expected: [Int], found: [Int])
  /// The tensor source failed to decode a tensor.
  case unreadableTensor(name: String, reason: String)
  /// A token id outside 0..<vocabSize.
  case tokenOutOfRange(token: Int, index: Int, vocabSize: Int)
  /// A sequence longer than the learned position table (OPT, GPT-2).
  case sequenceTooLong(length: Int, maxPositions: Int)
  /// The token count is not a positive multiple of the sequence length.
  case invalidSequenceLength(tokens: Int, sequenceLength: Int)
  /// A linear-layer name that is not one of the model's.
  case unknownLayer(name: String)

  public var message: String {
    switch self {
    case .missingTensor(let name, let architecture):
      return "tensor '\(name)' is missing from the \(architecture) checkpoint"
    case .shapeMismatch(let name, let expected, let found):
      return "tensor '\(name)' has shape \(found), but config.json implies \(expected)"
    case .unreadableTensor(let name, let reason): return "tensor '\(name)' cannot be read: \(reason)"
    case .tokenOutOfRange(let token, let index, let vocab):
      return "token \(token) at index \(index) is outside the vocabulary 0..<\(vocab)"
    case .sequenceTooLong(let length, let maxPositions):
      return "a sequence of \(length) tokens is longer than the model's \(maxPositions) positions"
    case .invalidSequenceLength(let tokens, let length):
      return "\(tokens) tokens cannot be cut into sequences of \(length)"
    case .unknownLayer(let name): return "'\(name)' is not a linear layer of this model"
    }
  }

  public var hint: String? {
    switch self {
    case .missingTensor: return "check model_type in config.json and the tensor names of the checkpoint."
    case .shapeMismatch: return "the config and the weights belong to different models."
    case .unreadableTensor: return "the file may be corrupt or use an unsupported element type."
    case .tokenOutOfRange: return "the tokenizer does not belong to this model."
    case .sequenceTooLong: return "use a shorter --seqlen."
    case .invalidSequenceLength: return "pass a positive number of whole sequences."
    case .unknownLayer:
      return "the names are Hugging Face module names such as model.layers.0.self_attn.q_proj (see linearLayerNames)."
    }
  }
}
