// Driver D (SparseLLM, Docs/pipeline.md#sparsellm-driver-d and
// Docs/methods/sparsellm.md#the-driver-driver-d): the attention layers of a block are pruned
// layer-locally by the inner method, then the FFN's layers are pruned together by `SparseLLM.prune`
// against the output of the *pruned* attention.

import Foundation
import PruneKernels
import PruneSolvers

extension TransformerLM {
  /// Block `index`'s feed-forward weights as a `SparseLLM.FeedForward` (dense, as the model holds
  /// them), with the module names of up, gate (LLaMA) and down.
  func feedForward(block index: Int) throws(ForwardError) -> (
    ffn: SparseLLM.FeedForward<Float>, up: String, gate: String?, down: String
  ) {
    let names = linearGroups(block: index)
    let first = names[2]
    let down = names[3][0]
    let gateName: String?
    let upName: String
    if config.architecture == .llama {
      gateName = first[0]
      upName = first[1]
    } else {
      gateName = nil
      upName = first[0]
    }
    let up = try linearWeights(upName)
    let downWeights = try linearWeights(down)
    let gate = try gateName.map { (n) throws(ForwardError) in try linearWeights(n) }
    let activation: SparseLLM.Activation
    switch config.activation {
    case .relu: activation = .relu
    case .gelu: activation = .gelu
    case .geluTanh: activation = .geluTanh
    case .silu: activation = .silu
    }
    let ffn = SparseLLM.FeedForward(
      up: up.weight, upBias: up.bias, gate: gate?.weight, gateBias: gate?.bias, down: downWeights.weight,
      downBias: downWeights.bias, activation: activation)
    return (ffn, upName, gateName, down)
  }
}

/// Driver D on one block. `input` is x_ℓ^pr, the output of the already-pruned blocks before it.
///
///   1. One pass of the unpruned block gathers the Grams of the attention groups ([q,k,v], [o]);
///      each attention layer is pruned by the inner method against its own input (Driver A).
///   2. The pruned attention is installed and the block re-run up to the FFN: X = the FFN input the
///      pruned model will see (the reference collects it from the dense pass, so its FFN never
///      sees that attention was pruned: SparseLLM issue #10,
///      Docs/methods/sparsellm.md#the-driver-driver-d).
///   3. Y = the dense FFN's output on that X; `SparseLLM.prune` prunes up (and gate) and down
///      together so that the pruned FFN reproduces Y.
///
/// The caller installs the returned weights and runs the pruned block for the next block's input.
/// Memory: X and Y `[tokens × hidden]` and the scheme's z, p (and s) `[tokens × intermediate]`.
func pruneBlockSparseLLM(
  _ model: TransformerLM, block: Int, input: BlockInput, pattern: SparsityPattern, options: MethodOptions,
  progress: (LayerRecord) -> Void
) throws(ModelPruningError) -> BlockOutcome {
  let groups = model.linearGroups(block: block)
  let inner = options.sparseLLM.inner.method
  // 1. Attention: the Grams of groups 0 and 1 from one pass of the unpruned block.
  let grams = try groupGrams(model, block: block, input: input, groups: 2)
  var outcome = BlockOutcome(weights: [], records: [])
  var pruned = model
  for g in 0..<2 {
    for name in groups[g] {
      let solving = ContinuousClock.now
      defer { outcome.solveSeconds += secondsSince(solving) }
      let (w, record) = try pruneLayer(
        model, block: block, name: name, gram: grams[g].gram, crossGram: nil, denseGram: nil, tokens: grams[g].tokens,
        method: inner, pattern: pattern, options: options)
      outcome.weights.append((name, w))
      outcome.records.append(record)
      progress(record)
      do { try pruned.setLinearWeight(name, w) } catch { throw .forward(error) }
    }
  }

  // 2. The FFN input behind the pruned attention, all chunks stacked.
  let width = model.config.hiddenSize
  var x = Matrix<Float>(rows: input.tokens, columns: width)
  for r in input.chunks {
    let part = pruned.groupInput(
      block: block, group: 2, hidden: try input.rows(r), sequenceLength: input.sequenceLength)
    x.withUnsafeMutableBufferPointer { px in
      part.withUnsafeBufferPointer { pp in
        (px.baseAddress! + r.lowerBound * width).update(from: pp.baseAddress!, count: pp.count)
      }
    }
  }

  // 3. The FFN, coordinated.
  let ffn: (ffn: SparseLLM.FeedForward<Float>, up: String, gate: String?, down: String)
  do { ffn = try model.feedForward(block: block) } catch { throw .forward(error) }
  // Name the layer a NaN or Inf is in before the FFN is pruned as a whole.
  if let gate = ffn.gate, let w = ffn.ffn.gate { try checkLayerWeight(block: block, name: gate, weight: w) }
  try checkLayerWeight(block: block, name: ffn.up, weight: ffn.ffn.up)
  try checkLayerWeight(block: block, name: ffn.down, weight: ffn.ffn.down)
  if let bad = NonFiniteSummary(of: x) {
    throw .layer(block: block, name: ffn.gate ?? ffn.up, .nonFiniteFFNInput(entries: nonFiniteEntries(bad, of: x)))
  }
  let result: SparseLLM.Result<Float>
  let solving = ContinuousClock.now
  do {
    result = try SparseLLM(options: options.sparseLLM, innerOptions: options).prune(ffn.ffn, input: x, pattern: pattern)
  } catch {
    let names = [ffn.gate, ffn.up, ffn.down].compactMap { $0 }.joined(separator: ", ")
    throw .layer(block: block, name: ffn.up, .sparseLLM(layers: names, error))
  }
  outcome.solveSeconds += secondsSince(solving)
  var layers: [(String, PruningResult<Float>)] = []
  if let gateName = ffn.gate, let gate = result.gate { layers.append((gateName, gate)) }
  layers.append((ffn.up, result.up))
  layers.append((ffn.down, result.down))
  for (name, r) in layers {
    let record = LayerRecord(block: block, name: name, result: r, errorCorrected: false)
    outcome.weights.append((name, r.weight))
    outcome.records.append(record)
    progress(record)
  }
  return outcome
}
