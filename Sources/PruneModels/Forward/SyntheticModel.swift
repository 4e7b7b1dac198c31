// Seeded random weights in Hugging Face layout for any `ForwardConfig`: the forward benchmark at
// real model shapes when the model is absent, and tests of the forward machinery at sizes the tiny
// golden models do not reach (several query blocks, many threads).

import PruneKernels

/// Seeded random checkpoints, with the tensor names and shapes a real one of the same config has.
public enum SyntheticModel {
  /// Every tensor `TransformerLM` reads for `config`, from `seed` alone: linear weights uniform in
  /// ±1/√in (PyTorch's default init scale, so activations stay O(1) through the blocks), biases
  /// and embeddings uniform in ±0.1, norm weights uniform in [0.5, 1.5], norm biases in ±0.1.
  /// GPT-2 linear weights are written [in, out] (Conv1D), as in a real checkpoint. The head is tied
  /// unless `config.tieWordEmbeddings` is false.
  public static func tensors(for config: ForwardConfig, seed: UInt64) -> InMemoryTensors {
    var rng = SplitMix64(seed: seed)
    var tensors: [String: FloatTensor] = [:]
    for t in specs(for: config) {
      tensors[t.name] = FloatTensor(shape: t.shape, values: t.values(count: t.count, using: &rng))
    }
    return InMemoryTensors(tensors)
  }

  /// One tensor of a synthetic checkpoint: its name, shape and the range its values are drawn
  /// from, uniformly, in row-major order, from the one generator every tensor shares.
  public struct TensorSpec: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    public var range: ClosedRange<Double>
    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }

    /// The next `count` values of this tensor from `rng` (a tensor may be drawn in pieces).
    public func values(count: Int, using rng: inout SplitMix64) -> [Float] {
      var values = [Float](repeating: 0, count: count)
      for i in 0..<count { values[i] = Float(rng.uniform(in: range)) }
      return values
    }
  }

  /// The tensors of `tensors(for:seed:)`, in the order their values are drawn, so that a model too
  /// large for memory can be generated and written a piece at a time with the same values.
  public static func specs(for config: ForwardConfig) -> [TensorSpec] {
    let layout = Layout(config: config, names: [])
    var specs: [TensorSpec] = []
    func add(_ name: String, _ shape: [Int], _ range: ClosedRange<Double>) {
      specs.append(TensorSpec(name: name, shape: shape, range: range))
    }
    let c = config
    let d = c.hiddenSize
    let layerNorms = c.architecture != .llama
    add(layout.tokenEmbedding, [c.vocabSize, c.wordEmbedDim], -0.1...0.1)
    switch c.architecture {
    case .llama: break
    case .opt: add(layout.positionEmbedding!, [c.maxPositions + 2, d], -0.1...0.1)
    case .gpt2: add(layout.positionEmbedding!, [c.maxPositions, d], -0.1...0.1)
    }
    if c.architecture == .opt && c.wordEmbedDim != d {
      let bound = 1 / Double(c.wordEmbedDim).squareRoot()
      add(layout.projectIn!, [d, c.wordEmbedDim], -bound...bound)
      add(layout.projectOut!, [c.wordEmbedDim, d], -1 / Double(d).squareRoot()...1 / Double(d).squareRoot())
    }
    func norm(_ name: String) {
      add(name + ".weight", [d], 0.5...1.5)
      if layerNorms { add(name + ".bias", [d], -0.1...0.1) }
    }
    if c.finalNorm { norm(layout.finalNorm) }
    if c.tieWordEmbeddings == false { add(layout.head, [c.vocabSize, c.wordEmbedDim], -0.1...0.1) }
    for l in 0..<c.layerCount {
      let prefix = layout.blockPrefix(l)
      norm(prefix + layout.attentionNorm)
      norm(prefix + layout.mlpNorm)
      for role in layout.linearRoles {
        let shape = role.shape(c)
        let bound = 1 / Double(shape[1]).squareRoot()
        add(prefix + role.name + ".weight", c.architecture == .gpt2 ? [shape[1], shape[0]] : shape, -bound...bound)
        if layerNorms { add(prefix + role.name + ".bias", [shape[0]], -0.1...0.1) }
      }
    }
    return specs
  }
}
