// The layer-problem file contract (Docs/layer-problem-file.md): one linear layer's pruning
// problem as a safetensors file, the interface through which PruneKit, the PyTorch reference and
// other backends exchange work. Also the mask file and the pruned-weight file.

import Foundation
import PruneKernels
import PruneSolvers

/// A layer-problem file, opened and checked against the contract (tensor names, dtypes, shapes);
/// `problem(as:)` decodes it into a `LayerProblem`.
///
/// | tensor | shape | dtype | meaning |
/// |---|---|---|---|
/// | `weight` | [out, in] | F32, F16, BF16 (F64) | dense weight W |
/// | `inputs` | [tokens, in] | F32, F16, BF16, F64 | calibration inputs X (when `gram` is absent) |
/// | `pruned_inputs` | [tokens, in] | as `inputs` | PruneKit extension: X*, with `inputs` |
/// | `gram` | [in, in] | F32, F64 | G = Σ x xᵀ; G* = Σ x* x*ᵀ when `cross_gram` is present |
/// | `cross_gram` | [in, in] | F32, F64 | optional K = Σ x x*ᵀ |
/// | `dense_gram` | [in, in] | F32, F64 | PruneKit extension: G = Σ x xᵀ, required with `cross_gram` |
/// | `count` | [1] | any numeric | optional number of tokens behind the Grams |
public struct LayerProblemFile: Sendable {
  /// Tensor names of the contract.
  public enum Tensor {
    public static let weight = "weight"
    public static let inputs = "inputs"
    public static let prunedInputs = "pruned_inputs"
    public static let gram = "gram"
    public static let crossGram = "cross_gram"
    public static let denseGram = "dense_gram"
    public static let count = "count"
    public static let mask = "mask"
  }

  /// Where the Grams of the problem come from.
  public enum GramSource: String, Sendable {
    /// The `gram` tensor (and `cross_gram`, `dense_gram`).
    case gram
    /// Accumulated from `inputs` (and `pruned_inputs`).
    case inputs
  }

  /// The underlying safetensors file.
  public let file: SafetensorsFile
  /// Rows of W (out).
  public let outputs: Int
  /// Columns of W (in).
  public let inputs: Int
  /// `gram` when the file has a `gram` tensor (then any `inputs` are not read), else `inputs`.
  public let gramSource: GramSource
  /// True when the problem is error-corrected (`cross_gram` or `pruned_inputs` present).
  public let isErrorCorrected: Bool

  /// The path of the file, for messages.
  public var path: String { file.path }

  /// Opens the file at `url` and checks names, dtypes and shapes (no tensor is decoded yet).
  public init(contentsOf url: URL) throws(LayerProblemFileError) {
    let file: SafetensorsFile
    do { file = try SafetensorsFile(contentsOf: url) } catch { throw .file(error) }
    try self.init(file: file)
  }

  /// Checks an opened safetensors file against the contract.
  public init(file: SafetensorsFile) throws(LayerProblemFileError) {
    self.file = file
    let path = file.path
    func need(_ name: String, _ hint: String) throws(LayerProblemFileError) -> [Int] {
      guard let s = file.shape(of: name) else { throw .missingTensor(path: path, tensor: name, hint: hint) }
      return s
    }
    func dtype(_ name: String, _ allowed: [SafetensorsDType]) throws(LayerProblemFileError) {
      if let d = file.rawDType(of: name), !allowed.contains(d) {
        throw .unsupportedDType(path: path, tensor: name, dtype: d, allowed: allowed)
      }
    }
    let w = try need(Tensor.weight, "a layer-problem file holds the dense weight as 'weight' [out, in]")
    guard w.count == 2 else {
      throw .shapeMismatch(path: path, tensor: Tensor.weight, shape: w, expected: "[out, in]", reference: nil)
    }
    try dtype(Tensor.weight, [.F32, .F16, .BF16, .F64])
    let (m, n) = (w[0], w[1])
    // Every size the problem allocates must be backed by bytes of the file: a weight with no rows
    // (or inputs with no tokens) would let a tiny file declare `in` = 10¹², and the [in, in] Gram
    // built from it would not fit in memory.
    guard m > 0, n > 0 else {
      throw .shapeMismatch(
        path: path, tensor: Tensor.weight, shape: w, expected: "[out, in] with out, in ≥ 1", reference: nil)
    }
    let reference = TensorShape(name: Tensor.weight, shape: w)
    func square(_ name: String) throws(LayerProblemFileError) {
      guard let s = file.shape(of: name) else { return }
      guard s == [n, n] else {
        throw .shapeMismatch(path: path, tensor: name, shape: s, expected: "[\(n), \(n)]", reference: reference)
      }
      try dtype(name, [.F32, .F64])
    }
    try square(Tensor.gram)
    try square(Tensor.crossGram)
    try square(Tensor.denseGram)
    let hasGram = file.shape(of: Tensor.gram) != nil
    let hasCross = file.shape(of: Tensor.crossGram) != nil
    let hasDense = file.shape(of: Tensor.denseGram) != nil
    if hasCross || hasDense {
      guard hasGram else {
        throw .missingTensor(
          path: path, tensor: Tensor.gram,
          hint: "an error-corrected problem needs 'gram' G* = Σ x* x*ᵀ beside 'cross_gram' and 'dense_gram'")
      }
      if !hasDense {
        throw .missingTensor(
          path: path, tensor: Tensor.denseGram,
          hint: "with 'cross_gram', the dense Gram G = Σ x xᵀ is needed for the absolute error tr(W G Wᵀ)")
      }
      if !hasCross {
        throw .missingTensor(
          path: path, tensor: Tensor.crossGram,
          hint: "'dense_gram' only makes sense with 'cross_gram' K = Σ x x*ᵀ (an error-corrected problem)")
      }
    }
    if !hasGram {
      let x = try need(
        Tensor.inputs, "give the calibration inputs 'inputs' [tokens, \(n)] or their Gram 'gram' [\(n), \(n)]")
      guard x.count == 2, x[1] == n else {
        throw .shapeMismatch(
          path: path, tensor: Tensor.inputs, shape: x, expected: "[tokens, \(n)]", reference: reference)
      }
      guard x[0] > 0 else {
        throw .shapeMismatch(
          path: path, tensor: Tensor.inputs, shape: x, expected: "[tokens, \(n)] with tokens ≥ 1", reference: reference)
      }
      try dtype(Tensor.inputs, [.F32, .F16, .BF16, .F64])
      if let xs = file.shape(of: Tensor.prunedInputs) {
        guard xs == x else {
          throw .shapeMismatch(
            path: path, tensor: Tensor.prunedInputs, shape: xs, expected: "\(x)",
            reference: TensorShape(name: Tensor.inputs, shape: x))
        }
        try dtype(Tensor.prunedInputs, [.F32, .F16, .BF16, .F64])
      }
    }
    if let c = file.shape(of: Tensor.count) {
      guard c == [1] || c == [] else {
        throw .shapeMismatch(path: path, tensor: Tensor.count, shape: c, expected: "[1]", reference: nil)
      }
      try dtype(Tensor.count, [.F64, .F32, .I64, .I32, .U8])
    }
    self.outputs = m
    self.inputs = n
    self.gramSource = hasGram ? .gram : .inputs
    self.isErrorCorrected = hasGram ? hasCross : file.shape(of: Tensor.prunedInputs) != nil
  }

  /// Decodes the file into a problem in precision `T`: checks every value is finite and every
  /// Gram symmetric, builds the Grams from the inputs when there is no `gram` (streamed in chunks of
  /// `chunkTokens` rows, accumulated in Double), and takes the token count from `count` or the
  /// inputs.
  ///
  /// A Gram that is symmetric up to the rounding of its stored dtype ((n + 1)·8·u·max|G|, the
  /// tolerance `LayerProblem` applies) is replaced by (G + Gᵀ)/2, so that a float32 Gram written by
  /// another tool loads in Double too.
  public func problem<T: KernelScalar>(as _: T.Type = T.self, chunkTokens: Int = 4096) throws(LayerProblemFileError)
    -> LayerProblem<T>
  {
    let weight: Matrix<T> = try matrix(Tensor.weight)
    var count: Int? = nil
    if file.shape(of: Tensor.count) != nil {
      let v: [Double]
      do { v = try file.doubleTensor(Tensor.count).values } catch { throw .file(error) }
      guard let c = v.first, c.isFinite, c >= 0, c == c.rounded(), c < 0x1p62 else {
        throw .invalidCount(
          path: path, detail: "'count' holds \(v.first.map { "\($0)" } ?? "nothing"), not a token count")
      }
      count = Int(c)
    }
    do {
      switch gramSource {
      case .gram:
        let g: Matrix<T> = try symmetricMatrix(Tensor.gram)
        if isErrorCorrected {
          let k: Matrix<T> = try matrix(Tensor.crossGram)
          let d: Matrix<T> = try symmetricMatrix(Tensor.denseGram)
          return try LayerProblem(weight: weight, gram: g, crossGram: k, denseGram: d, tokens: count ?? 0)
        }
        return try LayerProblem(weight: weight, gram: g, tokens: count ?? 0)
      case .inputs:
        let x: Matrix<T> = try matrix(Tensor.inputs)
        if let count, count != x.rows {
          throw LayerProblemFileError.invalidCount(
            path: path, detail: "'count' says \(count) tokens but 'inputs' has \(x.rows) rows")
        }
        var xStar: Matrix<T>? = nil
        if isErrorCorrected { xStar = try matrix(Tensor.prunedInputs) as Matrix<T> }
        return try LayerProblem(weight: weight, inputs: x, prunedInputs: xStar, chunkTokens: chunkTokens)
      }
    } catch let e as LayerProblemFileError {
      throw e
    } catch let e as LayerProblemError {
      throw .problem(path: path, e)
    } catch {
      preconditionFailure("unexpected error \(error)")
    }
  }

  /// A 2-D tensor of the file in precision `T`, every value checked finite (after conversion: an
  /// F64 value beyond Float's range is reported with its stored value).
  func matrix<T: KernelScalar>(_ name: String) throws(LayerProblemFileError) -> Matrix<T> {
    let m: Matrix<T>
    do { m = try file.matrix(name, as: T.self) } catch { throw .file(error) }
    let bad: Int? = m.withUnsafeBufferPointer { p in p.firstIndex { !$0.isFinite } }
    if let bad {
      let stored = (try? file.doubleTensor(name).values[bad]) ?? Double(m.elements[bad])
      throw .nonFinite(
        path: path, tensor: name, index: [bad / max(1, m.columns), bad % max(1, m.columns)], value: stored,
        precision: stored.isFinite ? "\(T.self)" : nil)
    }
    return m
  }

  /// A square tensor checked symmetric within the rounding of its stored dtype, then symmetrised.
  func symmetricMatrix<T: KernelScalar>(_ name: String) throws(LayerProblemFileError) -> Matrix<T> {
    var g: Matrix<T> = try matrix(name)
    let n = g.rows
    let u = file.rawDType(of: name) == .F64 ? Double.unitRoundoff : Float.unitRoundoff
    let tolerance = Double(n + 1) * max(u, T.unitRoundoff) * 8 * Double(g.maxMagnitude)
    for i in 0..<n {
      for j in (i + 1)..<max(i + 1, n) {
        let a = g[i, j]
        let b = g[j, i]
        if abs(Double(a) - Double(b)) > tolerance {
          throw .asymmetric(path: path, tensor: name, row: i, column: j, upper: Double(a), lower: Double(b))
        }
        if a != b {
          let mean = (a + b) / 2
          g[i, j] = mean
          g[j, i] = mean
        }
      }
    }
    return g
  }

  /// A file writer holding a problem: `weight` (F32 for Float, F64 for Double), and `inputs` or
  /// `gram` (+ `cross_gram`, `dense_gram`) and `count` as given. Used by `prune make-problem` and
  /// the tests.
  public static func writer<T: KernelScalar>(
    weight: Matrix<T>, inputs: Matrix<T>? = nil, gram: Matrix<T>? = nil, crossGram: Matrix<T>? = nil,
    denseGram: Matrix<T>? = nil, count: Int? = nil, metadata: [String: String] = [:]
  ) throws(SafetensorsError) -> SafetensorsWriter {
    var w = SafetensorsWriter(metadata: metadata)
    try w.add(Tensor.weight, matrix: weight)
    if let inputs { try w.add(Tensor.inputs, matrix: inputs) }
    if let gram { try w.add(Tensor.gram, matrix: gram) }
    if let crossGram { try w.add(Tensor.crossGram, matrix: crossGram) }
    if let denseGram { try w.add(Tensor.denseGram, matrix: denseGram) }
    if let count { try w.add(Tensor.count, shape: [1], .f64([Double(count)])) }
    return w
  }
}

/// The mask file of the contract: `mask` [out, in] as U8 or BOOL, 1 = kept, 0 = pruned.
public enum MaskFile {
  /// Reads the mask at `url`; with `rows` and `columns`, also checks its shape against the weight.
  public static func load(contentsOf url: URL, rows: Int? = nil, columns: Int? = nil) throws(LayerProblemFileError)
    -> Mask
  {
    let file: SafetensorsFile
    do { file = try SafetensorsFile(contentsOf: url) } catch { throw .file(error) }
    return try load(file, rows: rows, columns: columns)
  }

  /// Reads the mask of an opened file.
  public static func load(_ file: SafetensorsFile, rows: Int? = nil, columns: Int? = nil) throws(LayerProblemFileError)
    -> Mask
  {
    let name = LayerProblemFile.Tensor.mask
    guard let shape = file.shape(of: name) else {
      throw .missingTensor(
        path: file.path, tensor: name, hint: "a mask file holds 'mask' [out, in] as U8 or BOOL, 1 = kept")
    }
    guard let dtype = file.rawDType(of: name), dtype == .U8 || dtype == .BOOL else {
      throw .unsupportedDType(path: file.path, tensor: name, dtype: file.rawDType(of: name)!, allowed: [.U8, .BOOL])
    }
    let expected = rows.flatMap { r in columns.map { [r, $0] } }
    guard shape.count == 2, expected == nil || shape == expected! else {
      throw .shapeMismatch(
        path: file.path, tensor: name, shape: shape, expected: expected.map { "\($0)" } ?? "[out, in]",
        reference: expected.map { TensorShape(name: LayerProblemFile.Tensor.weight, shape: $0) })
    }
    let bytes: [UInt8]
    do { bytes = try file.bytes(name).values } catch { throw .file(error) }
    if let bad = bytes.firstIndex(where: { $0 > 1 }) {
      throw .invalidMask(path: file.path, index: [bad / max(1, shape[1]), bad % max(1, shape[1])], value: bytes[bad])
    }
    return Mask(rows: shape[0], columns: shape[1], kept: bytes.map { $0 == 1 })
  }

  /// A file writer holding `mask` as U8 (1 = kept).
  public static func writer(_ mask: Mask, metadata: [String: String] = [:]) -> SafetensorsWriter {
    var w = SafetensorsWriter(metadata: metadata)
    try! w.add(LayerProblemFile.Tensor.mask, shape: [mask.rows, mask.columns], .u8(mask.kept.map { $0 ? 1 : 0 }))
    return w
  }
}

/// The pruned-weight file of the contract: `weight` [out, in] as F32, exact zeros where pruned.
public enum PrunedWeightFile {
  /// A file writer holding `weight` converted to F32. A Double weight's pruned entries are exact
  /// zeros and stay so; kept entries are rounded to nearest.
  public static func writer<T: KernelScalar>(_ weight: Matrix<T>, metadata: [String: String] = [:]) -> SafetensorsWriter
  {
    var w = SafetensorsWriter(metadata: metadata)
    try! w.add(LayerProblemFile.Tensor.weight, matrix: weight.converted(to: Float.self))
    return w
  }
}

/// A tensor's name and shape, quoted in shape-mismatch messages.
public struct TensorShape: Sendable, Equatable {
  public let name: String
  public let shape: [Int]
  public init(name: String, shape: [Int]) {
    self.name = name
    self.shape = shape
  }
}

/// Why a layer-problem or mask file was rejected. Every description is one line naming the file
/// and tensor and ending with a `Hint:`.
public enum LayerProblemFileError: PruneKitError, Equatable {
  /// The safetensors container itself is unreadable or malformed.
  case file(SafetensorsError)
  /// A tensor the contract requires is absent; `hint` says which combination is expected.
  case missingTensor(path: String, tensor: String, hint: String)
  /// A tensor has the wrong shape: its shape, the expected one, and the tensor the expectation
  /// comes from (name and shape), if any.
  case shapeMismatch(path: String, tensor: String, shape: [Int], expected: String, reference: TensorShape?)
  /// A tensor is stored in a dtype the contract does not allow for it.
  case unsupportedDType(path: String, tensor: String, dtype: SafetensorsDType, allowed: [SafetensorsDType])
  /// A NaN or infinity (or, with `precision`, a finite stored value out of that precision's range)
  /// at `index` (row-major, outermost first).
  case nonFinite(path: String, tensor: String, index: [Int], value: Double, precision: String?)
  /// G[row, column] and G[column, row] differ by more than rounding.
  case asymmetric(path: String, tensor: String, row: Int, column: Int, upper: Double, lower: Double)
  /// `count` is not a usable token count.
  case invalidCount(path: String, detail: String)
  /// A mask entry other than 0 or 1.
  case invalidMask(path: String, index: [Int], value: UInt8)
  /// The problem was rejected by `LayerProblem` after loading.
  case problem(path: String, LayerProblemError)

  public var message: String {
    switch self {
    case .file(let e): return e.message
    case .missingTensor(let path, let tensor, _): return "\(path): no tensor '\(tensor)'"
    case .shapeMismatch(let path, let tensor, let shape, let expected, let reference):
      let from = reference.map { " (from '\($0.name)' \($0.shape))" } ?? ""
      return "\(path): '\(tensor)' has shape \(shape), expected \(expected)\(from)"
    case .unsupportedDType(let path, let tensor, let dtype, let allowed):
      return
        "\(path): '\(tensor)' is \(dtype.rawValue), but the contract allows \(allowed.map(\.rawValue).joined(separator: ", "))"
    case .nonFinite(let path, let tensor, let index, let value, let precision):
      let what = precision.map { "\(value), which overflows \($0)" } ?? "\(value)"
      return "\(path): '\(tensor)'\(index) is \(what)"
    case .asymmetric(let path, let tensor, let row, let column, let upper, let lower):
      return "\(path): '\(tensor)' is not symmetric: [\(row), \(column)] = \(upper) but [\(column), \(row)] = \(lower)"
    case .invalidCount(let path, let detail): return "\(path): \(detail)"
    case .invalidMask(let path, let index, let value): return "\(path): 'mask'\(index) is \(value), not 0 or 1"
    case .problem(let path, let e): return "\(path): \(e.message)"
    }
  }

  public var hint: String? {
    switch self {
    case .file(let e): return e.hint
    case .missingTensor(_, _, let hint): return sentence(hint)
    case .shapeMismatch: return "W is [out, in], the Grams [in, in], the inputs [tokens, in] and the mask [out, in]."
    case .unsupportedDType: return "convert the tensor when writing the file."
    case .nonFinite(_, _, _, _, let precision):
      return precision == nil
        ? "NaN or Inf in weights or activations; check the model file and the calibration run."
        : "use --precision double, or rescale the tensor."
    case .asymmetric: return "a Gram is Σ x xᵀ; check the producer (or that 'cross_gram' and 'gram' are not swapped)."
    case .invalidCount: return "'count' [1] is the number of calibration tokens behind the Grams."
    case .invalidMask: return "a mask holds 1 for kept and 0 for pruned weights."
    case .problem(_, let e): return e.hint ?? "check the producer of the file."
    }
  }
}
