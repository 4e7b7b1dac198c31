// What each fuzz target does with one input. This file is compiled twice: into the test target
// (FuzzRegressionTests replays the seed corpus and every past crash through it) and, by
// scripts/fuzz.sh, into the libFuzzer executables built from Tests/Fuzz/<target>.swift. So the
// fuzzer and the regression test run exactly the same calls. It imports only Foundation and
// PruneOracle (which re-exports the formats and models; no Testing), and must stay that way.

import Foundation
import PruneOracle

/// The parsers that read outside input, fed one input at a time.
enum FuzzHarness {
  /// One fuzz target per parser; the raw value is the folder name under Fixtures/fuzz/ and the
  /// name given to scripts/fuzz.sh.
  enum Target: String, CaseIterable, Sendable {
    /// `SafetensorsFile(data:name:)`, then every tensor decoded.
    case safetensors
    /// `GGUFFile(data:path:)`, every tensor decoded, the LLaMA config and the tokenizer.
    case gguf
    /// `ModelConfig(json:source:)` on config.json bytes, and the `ForwardConfig` derived from it.
    case configJSON = "config-json"
    /// `BPETokenizer(tokenizerJSON:source:)`, then a fixed text encoded and decoded.
    case tokenizerJSON = "tokenizer-json"
    /// A layer-problem file: the contract check, the problem in Float and Double, the mask (when
    /// the file holds one).
    case layerProblem = "layer-problem"

    /// The label the input is given as its path, so messages can be checked to name it.
    var sourceName: String { "fuzz-input.\(rawValue)" }
  }

  /// What became of one input.
  struct Outcome {
    /// The typed errors the parsers threw (empty when every call accepted the input).
    var errors: [any Error] = []
    /// Why the outcome breaks the rules: an error of a type the parser must not throw, or a
    /// message that is not one line, lacks a `Hint:` or does not name the input. Empty when fine.
    var violations: [String] = []
  }

  /// A fixed text the tokenizer targets encode: letters, digits, spaces, punctuation, an added
  /// token of the seed tokenizers and non-ASCII characters.
  static let sampleText = "Hello, world! It's 2024:  naïve café 🙂 <|end|>\n\tthe lower tower 42"

  /// Runs `target`'s parsers on `data` and checks every error they throw.
  static func run(_ target: Target, _ data: Data) -> Outcome {
    var outcome = Outcome()
    let source = target.sourceName
    func attempt<R>(_ allowed: [any Error.Type], _ body: () throws -> R) -> R? {
      do {
        return try body()
      } catch {
        outcome.errors.append(error)
        outcome.violations += check(error, allowed: allowed, source: source)
        return nil
      }
    }
    switch target {
    case .safetensors:
      guard let file = attempt([SafetensorsError.self], { try SafetensorsFile(data: data, name: source) }) else {
        break
      }
      for name in file.tensorNames {
        let dtype = file.rawDType(of: name)!
        if dtype.isDecodable {
          let whole = attempt([SafetensorsError.self]) { try file.floatTensor(name) }
          outcome.violations += rowViolations(file, name, whole) { try file.floatRows(name, rows: $0) }
          _ = attempt([SafetensorsError.self]) { try file.doubleTensor(name) }
          if (1...2).contains(file.shape(of: name)!.count) {
            _ = attempt([SafetensorsError.self]) { try file.matrix(name, as: Float.self) }
          }
        }
        if dtype == .U8 || dtype == .BOOL { _ = attempt([SafetensorsError.self]) { try file.bytes(name) } }
      }
    case .gguf:
      let allowed: [any Error.Type] = [GGUFError.self, TokenizerError.self, ModelConfigError.self]
      guard let file = attempt(allowed, { try GGUFFile(data: data, path: source) }) else { break }
      for info in file.tensorInfos where info.type.isDecodable {
        _ = attempt(allowed) { try file.rawFloatTensor(info.name) }
      }
      for name in file.tensorNames {
        let whole = attempt(allowed) { try file.floatTensor(name) }
        outcome.violations += rowViolations(file, name, whole) { try file.floatRows(name, rows: $0) }
      }
      if let config = attempt(allowed, { try file.llamaConfig() }) {
        _ = attempt(allowed) { try ForwardConfig(.llama(config), source: source) }
      }
      if let tokenizer = attempt(allowed, { try BPETokenizer(gguf: file) }) {
        exercise(tokenizer)
      }
    case .configJSON:
      let allowed: [any Error.Type] = [ModelConfigError.self]
      if let config = attempt(allowed, { try ModelConfig(json: data, source: source) }) {
        _ = attempt(allowed) { try ForwardConfig(config, source: source) }
      }
    case .tokenizerJSON:
      if let tokenizer = attempt([TokenizerError.self], { try BPETokenizer(tokenizerJSON: data, source: source) }) {
        exercise(tokenizer)
      }
    case .layerProblem:
      let allowed: [any Error.Type] = [SafetensorsError.self, LayerProblemFileError.self]
      guard let file = attempt(allowed, { try SafetensorsFile(data: data, name: source) }) else { break }
      if let problem = attempt(allowed, { try LayerProblemFile(file: file) }) {
        _ = attempt(allowed) { try problem.problem(as: Float.self, chunkTokens: 7) }
        _ = attempt(allowed) { try problem.problem(as: Double.self) }
      }
      // A mask file is read only when there is a mask (a problem file without one is fine).
      if file.shape(of: LayerProblemFile.Tensor.mask) != nil { _ = attempt(allowed) { try MaskFile.load(file) } }
    }
    return outcome
  }

  /// Rows read by range (`TensorSource.floatRows`: the first row, the last, all of them) must equal
  /// the rows of the whole tensor when it decoded, bit for bit, and read without error.
  static func rowViolations(
    _ file: some TensorSource, _ name: String, _ whole: FloatTensor?, _ rows: (Range<Int>) throws -> FloatTensor
  ) -> [String] {
    guard let whole, let count = whole.shape.first, count > 0 else { return [] }
    let width = whole.shape.dropFirst().reduce(1, *)
    var violations: [String] = []
    for range in [0..<1, (count - 1)..<count, 0..<count] {
      do {
        let read = try rows(range)
        let expected = whole.values[(range.lowerBound * width)..<(range.upperBound * width)]
        if read.values.map(\.bitPattern) != expected.map(\.bitPattern) {
          violations.append("\(name): rows \(range) read by range differ from the whole tensor's")
        }
      } catch {
        violations.append("\(name): rows \(range) failed after the whole tensor decoded: \(error)")
      }
    }
    return violations
  }

  /// Encodes and decodes the sample text, decodes every id once, and checks the round trip of
  /// ids that must be in range.
  private static func exercise(_ tokenizer: BPETokenizer) {
    let ids = tokenizer.encode(sampleText)
    precondition(ids.allSatisfy { (0..<tokenizer.vocabularySize).contains($0) }, "encode gave an id out of range")
    _ = try! tokenizer.decode(ids)
    _ = try! tokenizer.decode(Array(0..<tokenizer.vocabularySize))
    _ = tokenizer.preTokenize(sampleText)
  }

  /// The rules every error must follow: one of the parser's typed errors, a one-line message that
  /// names the input and ends with a hint.
  static func check(_ error: any Error, allowed: [any Error.Type], source: String) -> [String] {
    guard allowed.contains(where: { type(of: error) == $0 }) else {
      return ["untyped error \(type(of: error)): \(error)"]
    }
    let message = "\(error)"
    var problems: [String] = []
    if message.contains("\n") || message.contains("\r") { problems.append("message spans several lines: \(message)") }
    if !message.contains("Hint: ") { problems.append("message has no 'Hint: ': \(message)") }
    if !message.contains(source) { problems.append("message does not name the input '\(source)': \(message)") }
    return problems
  }
}
