// prune-bench forward: tokens per second of a LLaMA forward pass at SmolLM2-135M shapes, and how
// close it comes to the SGEMM throughput of its own GEMMs.
//
//   prune-bench forward [--json] [--tokens 1024] [--layers 30] [--threads 2] [--runs 3]
//                       [--model PATH.gguf | --random]
//
// Model: SmolLM2-135M-Instruct from its GGUF (--model, else .cache/models/ when
// scripts/fetch-model.sh has fetched it), or its shapes (hidden 576, 30 blocks, 9 query heads and
// 3 key/value heads of 64, SwiGLU 1536, vocab 49152, tied head) with seeded random weights
// (`SyntheticModel`) when the file is absent, with --random, or with --layers other than 30; the
// forward pass does the same work whatever the weights are. One window of `tokens` tokens, from
// embedding to the full [tokens × vocab] logits.
//
// GEMM reference: the same GEMM calls the forward makes, with the same shapes, transposes and
// threading, on the same data sizes, run back to back with nothing between them:
//   per block  q, k, v, o, gate, up, down: x·Wᵀ with the default thread count;
//              attention: for each head and block of `attentionQueryRows` queries, S = Q·Kᵀ over
//              the keys up to the block's end and P·V, single-threaded items shared by the threads;
//   head       h·Eᵀ, [tokens × 576]·[576 × 49152].
// "efficiency" = GEMM-only seconds / forward seconds, best runs (the target is ≥ 0.6);
// "efficiency_median_of_runs" = the median over runs of the same ratio within one run; and
// "share_outside_gemm" = 1 − efficiency: norms, RoPE, softmax, SwiGLU, residual adds, embedding,
// copies. Flops count 2mnk per GEMM (causal attention only counts the keys it computes).

import Dispatch
import Foundation
import PruneKit
import Synchronization

func smolLM2Config(layers: Int) -> ForwardConfig {
  try! ForwardConfig(
    .llama(
      LlamaConfig(
        hiddenSize: 576, intermediateSize: 1536, numHiddenLayers: layers, numAttentionHeads: 9, numKeyValueHeads: 3,
        headDim: 64, rmsNormEps: 1e-5, ropeTheta: 100000, maxPositionEmbeddings: 8192, vocabSize: 49152,
        tieWordEmbeddings: true)))
}

/// Replays the forward's GEMMs (shapes, transposes, threading) on random data of the same sizes.
struct ForwardGEMMReplay {
  let c: ForwardConfig
  let tokens: Int
  let x: Matrix<Float>, xInner: Matrix<Float>, attention: Matrix<Float>
  let q: Matrix<Float>, k: Matrix<Float>, v: Matrix<Float>
  let weights: [Matrix<Float>]  // q, k, v, o, gate, up, down
  let embedding: Matrix<Float>

  init(config: ForwardConfig, tokens: Int) {
    c = config
    self.tokens = tokens
    var rng = SplitMix64(seed: 42)
    func random(_ r: Int, _ cols: Int) -> Matrix<Float> {
      Matrix(rows: r, columns: cols) { _, _ in Float(rng.uniform(in: -1...1)) }
    }
    let d = c.hiddenSize
    let hd = c.headCount * c.headDim
    let kvd = c.keyValueHeadCount * c.headDim
    let i = c.intermediateSize
    x = random(tokens, d)
    xInner = random(tokens, i)
    attention = random(tokens, hd)
    q = random(tokens, hd)
    k = random(tokens, kvd)
    v = random(tokens, kvd)
    weights = [random(hd, d), random(kvd, d), random(kvd, d), random(d, hd), random(i, d), random(i, d), random(d, i)]
    embedding = random(c.vocabSize, d)
  }

  /// Flops of the linear layers of one block, of the attention of one block, and of the head.
  var flops: (linear: Double, attention: Double, head: Double) {
    let t = Double(tokens)
    let linear = weights.reduce(0.0) { $0 + 2 * t * Double($1.rows * $1.columns) }
    var attentionFlops = 0.0
    let block = TransformerLM.attentionQueryRows
    for first in stride(from: 0, to: tokens, by: block) {
      let end = min(tokens, first + block)
      attentionFlops += 2 * 2 * Double((end - first) * end * c.headDim) * Double(c.headCount)
    }
    return (linear, attentionFlops, 2 * t * Double(c.vocabSize * c.hiddenSize))
  }

  func linearLayers() {
    for (n, w) in weights.enumerated() {
      let input = n == 3 ? attention : (n == 6 ? xInner : x)
      _ = matmul(input, w, transposeB: true)
    }
  }

  func attentionGEMMs() {
    let d = c.headDim
    let heads = c.headCount
    let group = c.headCount / c.keyValueHeadCount
    let block = TransformerLM.attentionQueryRows
    let blocks = (tokens + block - 1) / block
    let items = heads * blocks
    let tokens = self.tokens
    var out = Matrix<Float>(rows: tokens, columns: heads * d)
    let ldq = q.columns
    let ldk = k.columns
    let ldo = heads * d
    q.withUnsafeBufferPointer { qp in
      k.withUnsafeBufferPointer { kp in
        v.withUnsafeBufferPointer { vp in
          out.withUnsafeMutableBufferPointer { op in
            let qs = SendableConstPointer(qp.baseAddress!)
            let ks = SendableConstPointer(kp.baseAddress!)
            let vs = SendableConstPointer(vp.baseAddress!)
            let os = SendablePointer(op.baseAddress!)
            let next = Atomic<Int>(0)
            DispatchQueue.concurrentPerform(iterations: max(1, min(Parallelism.threads, items))) { _ in
              let s = UnsafeMutablePointer<Float>.allocate(capacity: block * tokens)
              defer { s.deallocate() }
              while true {
                let item = next.wrappingAdd(1, ordering: .relaxed).oldValue
                if item >= items { break }
                let b = blocks - 1 - item / heads
                let head = item % heads
                let g = head / group
                let first = b * block
                let end = min(tokens, first + block)
                let rows = end - first
                gemm(
                  transposeA: false, transposeB: true, m: rows, n: end, k: d, alpha: 0.125,
                  a: qs.base + first * ldq + head * d, lda: ldq, b: ks.base + g * d, ldb: ldk,
                  beta: 0, c: s, ldc: end, threads: 1)
                gemm(
                  transposeA: false, transposeB: false, m: rows, n: d, k: end, alpha: 1,
                  a: s, lda: end, b: vs.base + g * d, ldb: ldk, beta: 0,
                  c: os.base + first * ldo + head * d, ldc: ldo, threads: 1)
              }
            }
          }
        }
      }
    }
  }

  func head() { _ = matmul(x, embedding, transposeB: true) }
}

func seconds(_ body: () -> Void) -> Double {
  let t0 = DispatchTime.now().uptimeNanoseconds
  body()
  return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
}

func runForwardBenchmark(tokens: Int, layers: Int, threads: Int, runs: Int, modelPath: String?) {
  Parallelism.threads = threads
  var config = smolLM2Config(layers: layers)
  let model: TransformerLM
  let modelName: String
  if let modelPath, layers == 30, FileManager.default.fileExists(atPath: modelPath) {
    do {
      let gguf = try GGUFFile(contentsOf: URL(fileURLWithPath: modelPath))
      config = try ForwardConfig(.llama(try gguf.llamaConfig()))
      model = try TransformerLM(config: config, weights: gguf)
    } catch {
      FileHandle.standardError.write(Data("prune-bench forward: \(error)\n".utf8))
      exit(1)
    }
    modelName = "smollm2-135m-instruct-q4_1"
  } else {
    model = try! TransformerLM(config: config, weights: SyntheticModel.tensors(for: config, seed: 1))
    modelName = "smollm2-135m-shapes-random"
  }
  var note = "prune-bench forward: \(modelName), \(layers) blocks, \(tokens) tokens, \(threads) threads\n"
  FileHandle.standardError.write(Data(note.utf8))
  var rng = SplitMix64(seed: 7)
  let ids = (0..<tokens).map { _ in Int(rng.next() % UInt64(config.vocabSize)) }

  // Forward, its pieces (embedding + blocks, head), and the same GEMMs alone, interleaved run by
  // run so that a change in the machine's load hits both sides alike.
  let replay = ForwardGEMMReplay(config: config, tokens: tokens)
  var forward: [Double] = []
  var blocksOnly: [Double] = []
  var headOnly: [Double] = []
  var linear: [Double] = []
  var attention: [Double] = []
  var head: [Double] = []
  var last = Matrix<Float>(rows: 0, columns: 0)
  var logits = Matrix<Float>(rows: 0, columns: 0)
  for run in 0...runs {
    let t = seconds { logits = try! model.forward(ids) }
    var h = Matrix<Float>(rows: 0, columns: 0)
    let b = seconds {
      h = try! model.embed(ids)
      for l in 0..<model.blockCount { h = model.runBlock(l, hidden: h) }
    }
    let hd = seconds { last = model.logits(h) }
    let gl = seconds { for _ in 0..<layers { replay.linearLayers() } }
    let ga = seconds { for _ in 0..<layers { replay.attentionGEMMs() } }
    let gh = seconds { replay.head() }
    if run > 0 {  // run 0 is the warm-up
      forward.append(t)
      blocksOnly.append(b)
      headOnly.append(hd)
      linear.append(gl)
      attention.append(ga)
      head.append(gh)
    }
  }
  precondition(
    last == logits && logits.maxMagnitude.isFinite, "prune-bench forward: the pieces do not reproduce the forward")
  let best = { (v: [Double]) in v.min()! }
  let flops = replay.flops
  let totalFlops = Double(layers) * (flops.linear + flops.attention) + flops.head
  let forwardSeconds = best(forward)
  let gemmSeconds = best(linear) + best(attention) + best(head)
  let blockGEMM = best(linear) + best(attention)
  // The same ratio run by run (each forward against the GEMMs timed right after it): less
  // sensitive to a burst of load that hits only one side's best run.
  let pairs = (0..<forward.count).map { (linear[$0] + attention[$0] + head[$0]) / forward[$0] }.sorted()
  let pairMedian = pairs[pairs.count / 2]
  func f(_ x: Double, _ digits: Int = 4) -> String { String(format: "%.\(digits)f", x) }
  print(
    "{\"benchmark\":\"forward\",\"model\":\"\(modelName)\",\"tokens\":\(tokens),\"layers\":\(layers),"
      + "\"threads\":\(threads),\"runs\":\(runs),\"seconds\":\(f(forwardSeconds)),"
      + "\"tokens_per_second\":\(f(Double(tokens) / forwardSeconds, 1)),"
      + "\"gflops\":\(f(totalFlops / forwardSeconds / 1e9, 2)),"
      + "\"gemm_seconds\":\(f(gemmSeconds)),\"gemm_gflops\":\(f(totalFlops / gemmSeconds / 1e9, 2)),"
      + "\"efficiency\":\(f(gemmSeconds / forwardSeconds, 3)),\"efficiency_median_of_runs\":\(f(pairMedian, 3)),"
      + "\"share_outside_gemm\":\(f(1 - gemmSeconds / forwardSeconds, 3)),"
      + "\"blocks_seconds\":\(f(best(blocksOnly))),\"blocks_gemm_seconds\":\(f(blockGEMM)),"
      + "\"blocks_efficiency\":\(f(blockGEMM / best(blocksOnly), 3)),"
      + "\"linear_gemm_seconds\":\(f(best(linear))),\"attention_gemm_seconds\":\(f(best(attention))),"
      + "\"head_seconds\":\(f(best(headOnly))),\"head_gemm_seconds\":\(f(best(head))),"
      + "\"gflop\":\(f(totalFlops / 1e9, 1))}")
  note =
    "forward \(f(forwardSeconds, 3)) s = \(f(Double(tokens) / forwardSeconds, 0)) tokens/s; "
    + "its GEMMs alone \(f(gemmSeconds, 3)) s; efficiency \(f(gemmSeconds / forwardSeconds, 3))\n"
  FileHandle.standardError.write(Data(note.utf8))
}
