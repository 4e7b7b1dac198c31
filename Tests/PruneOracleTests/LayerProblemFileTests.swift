import Foundation
import PruneKernels
import PruneOracle
import PruneSolvers
import PruneTestSupport
import Testing

/// Opens the bytes of `writer` as a layer-problem file named `name` (no disk involved).
func problemFile(_ writer: SafetensorsWriter, name: String = "p") throws(LayerProblemFileError) -> LayerProblemFile {
  do { return try LayerProblemFile(file: SafetensorsFile(data: writer.serialized(), name: name)) } catch let e
    as LayerProblemFileError
  {
    throw e
  } catch {
    throw .file(error as! SafetensorsError)
  }
}

/// The error that opening `writer`'s bytes as a layer-problem file and loading it in Double
/// raises, or nil when it loads.
func loadError(_ writer: SafetensorsWriter) -> LayerProblemFileError? {
  do {
    _ = try problemFile(writer).problem(as: Double.self)
    return nil
  } catch {
    return error
  }
}

/// Random W: [m × n] and X: [tokens × n], uniform in [−1, 1].
func randomLayer(rows m: Int, columns n: Int, tokens: Int, seed: UInt64) -> (w: Matrix<Float>, x: Matrix<Float>) {
  var rng = SplitMix64(seed: seed)
  return (
    Matrix<Float>.random(rows: m, columns: n, using: &rng), Matrix<Float>.random(rows: tokens, columns: n, using: &rng)
  )
}

@Suite struct LayerProblemFileTests {
  // MARK: Good loads

  @Test(arguments: [11, 12] as [UInt64])
  func inputsLoadLikeTheInMemoryProblem(seed: UInt64) throws {
    let (w, x) = randomLayer(rows: 5, columns: 12, tokens: 40, seed: seed)
    let file = try problemFile(LayerProblemFile.writer(weight: w, inputs: x))
    #expect(file.outputs == 5 && file.inputs == 12 && file.gramSource == .inputs && !file.isErrorCorrected)
    let loaded: LayerProblem<Float> = try file.problem(chunkTokens: 7)
    let expected = try LayerProblem(weight: w, inputs: x, chunkTokens: 7)
    expectBitIdentical(loaded.weight, expected.weight, "seed \(seed): weight")
    expectBitIdentical(loaded.gram, expected.gram, "seed \(seed): gram")
    #expect(loaded.tokens == 40, "seed \(seed)")
    let inDouble: LayerProblem<Double> = try file.problem()
    expectBitIdentical(
      inDouble.gram, try LayerProblem(weight: w.converted(to: Double.self), inputs: x.converted(to: Double.self)).gram,
      "seed \(seed): Double gram")
  }

  @Test func gramAndCountLoad() throws {
    var rng = SplitMix64(seed: 21)
    let w = Matrix<Double>.random(rows: 3, columns: 6, using: &rng)
    let g = randomSPD(6, using: &rng)
    let file = try problemFile(LayerProblemFile.writer(weight: w, gram: g, count: 16))
    #expect(file.gramSource == .gram)
    let p: LayerProblem<Double> = try file.problem()
    expectBitIdentical(p.gram, g, "seed 21: F64 gram must load exactly")
    expectBitIdentical(p.weight, w, "seed 21: F64 weight must load exactly")
    #expect(p.tokens == 16)
    // The relative error of the all-zero candidate is 1 by definition.
    #expect(abs(p.relativeError(of: Matrix(rows: 3, columns: 6)) - 1) < 1e-14)
  }

  @Test func errorCorrectedProblemLoadsWithItsAbsoluteError() throws {
    var rng = SplitMix64(seed: 31)
    let n = 5
    let w = Matrix<Double>.random(rows: 4, columns: n, using: &rng)
    let x = Matrix<Double>.random(rows: 20, columns: n, using: &rng)
    let xStar = x.map { $0 + 0.1 }
    let expected = try LayerProblem(weight: w, inputs: x, prunedInputs: xStar)
    let file = try problemFile(
      LayerProblemFile.writer(
        weight: w, gram: expected.gram, crossGram: expected.crossGram, denseGram: expected.denseGram, count: 20))
    #expect(file.isErrorCorrected)
    let p: LayerProblem<Double> = try file.problem()
    #expect(p.isErrorCorrected && p.tokens == 20)
    // E(W) = ‖X* Wᵀ − X Wᵀ‖², which needs tr(W G Wᵀ) from dense_gram.
    let candidate = w.map { $0 * 0.5 }
    #expect(p.error(of: candidate) == expected.error(of: candidate), "seed 31")
    #expect(p.denseEnergy == expected.denseEnergy, "seed 31")
  }

  @Test func halfPrecisionWeightsLoad() throws {
    // weight [2, 2] F16 = [1, −2.5; 65504, 2⁻²⁴], gram = I (F32).
    let header = """
      {"gram":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"weight":{"dtype":"F16","shape":[2,2],"data_offsets":[16,24]}}
      """
    var buffer: [UInt8] = []
    for v: Float in [1, 0, 0, 1] { withUnsafeBytes(of: v.bitPattern.littleEndian) { buffer += $0 } }
    buffer += littleEndianBytes([0x3C00, 0xC100, 0x7BFF, 0x0001])
    let file = try LayerProblemFile(
      file: SafetensorsFile(data: safetensorsBytes(header: header, buffer: buffer), name: "h"))
    let p: LayerProblem<Float> = try file.problem()
    #expect(p.weight.elements == [1, -2.5, 65504, 0x1p-24])
    let bf = try LayerProblemFile(
      file: SafetensorsFile(
        data: safetensorsBytes(
          header: header.replacingOccurrences(of: "F16", with: "BF16"),
          buffer: Array(buffer[0..<16]) + littleEndianBytes([0x3F80, 0xC020, 0x477F, 0x0001])), name: "b"))
    #expect(try bf.problem(as: Double.self).weight.elements == [1, -2.5, 65280, 0x1p-133])
  }

  @Test func float32GramWithRoundingAsymmetryLoadsSymmetrised() throws {
    var rng = SplitMix64(seed: 41)
    var g = randomSPD(6, using: &rng).converted(to: Float.self)
    // One ulp of asymmetry, as float32 X.T @ X from another tool can give.
    g[1, 4] = g[1, 4].nextUp
    let w = Matrix<Float>.random(rows: 2, columns: 6, using: &rng)
    let p = try problemFile(LayerProblemFile.writer(weight: w, gram: g)).problem(as: Double.self)
    #expect(p.gram[1, 4] == p.gram[4, 1], "seed 41: not symmetrised")
    #expect(p.gram[1, 4] == (Double(g[1, 4]) + Double(g[4, 1])) / 2, "seed 41")
  }

  // MARK: Rejections

  @Test func missingTensorsAreNamed() throws {
    let (w, x) = randomLayer(rows: 2, columns: 4, tokens: 8, seed: 51)
    let g = try LayerProblem(weight: w, inputs: x).gram
    var noWeight = SafetensorsWriter()
    try noWeight.add("inputs", matrix: x)
    #expect(
      throws: LayerProblemFileError.missingTensor(
        path: "p", tensor: "weight", hint: "a layer-problem file holds the dense weight as 'weight' [out, in]")
    ) {
      try problemFile(noWeight)
    }
    let noData = try #require(loadError(LayerProblemFile.writer(weight: w)), "a file without inputs or gram loaded")
    guard case .missingTensor(_, let tensor, let hint) = noData else {
      Issue.record("\(noData)")
      return
    }
    #expect(tensor == "inputs" && hint.contains("'gram' [4, 4]"), "\(noData)")
    let noDense = try #require(loadError(LayerProblemFile.writer(weight: w, gram: g, crossGram: g)))
    guard case .missingTensor(_, let tensor2, let hint2) = noDense else {
      Issue.record("\(noDense)")
      return
    }
    #expect(tensor2 == "dense_gram" && hint2.contains("absolute error"), "\(noDense)")
    let noCross = try #require(loadError(LayerProblemFile.writer(weight: w, gram: g, denseGram: g)))
    guard case .missingTensor(_, let tensor3, _) = noCross else {
      Issue.record("\(noCross)")
      return
    }
    #expect(tensor3 == "cross_gram", "\(noCross)")
  }

  @Test func shapeMismatchesNameBothShapes() throws {
    let (w, x) = randomLayer(rows: 8, columns: 16, tokens: 20, seed: 61)
    let g15 = Matrix<Float>(rows: 16, columns: 15)
    let error = try #require(loadError(LayerProblemFile.writer(weight: w, gram: g15)), "a [16, 15] gram loaded")
    #expect(
      error
        == .shapeMismatch(
          path: "p", tensor: "gram", shape: [16, 15], expected: "[16, 16]",
          reference: TensorShape(name: "weight", shape: [8, 16])))
    #expect(error.description.contains("[16, 15]") && error.description.contains("[8, 16]"), "\(error)")
    let x15 = x.submatrix(rows: 0..<20, columns: 0..<15)
    #expect(
      throws: LayerProblemFileError.shapeMismatch(
        path: "p", tensor: "inputs", shape: [20, 15], expected: "[tokens, 16]",
        reference: TensorShape(name: "weight", shape: [8, 16]))
    ) {
      try problemFile(LayerProblemFile.writer(weight: w, inputs: x15))
    }
    var rank3 = SafetensorsWriter()
    try rank3.add("weight", shape: [2, 2, 2], .f32(Array(repeating: 1, count: 8)))
    #expect(
      throws: LayerProblemFileError.shapeMismatch(
        path: "p", tensor: "weight", shape: [2, 2, 2], expected: "[out, in]", reference: nil)
    ) {
      try problemFile(rank3)
    }
  }

  @Test func nonFiniteValuesNameTensorAndFirstIndex() throws {
    var (w, x) = randomLayer(rows: 3, columns: 6, tokens: 10, seed: 71)
    x[4, 2] = .nan
    x[7, 1] = .infinity
    let file = try problemFile(LayerProblemFile.writer(weight: w, inputs: x))
    for precision in ["Float", "Double"] {
      do {
        _ = precision == "Float" ? try file.problem(as: Float.self).tokens : try file.problem(as: Double.self).tokens
        Issue.record("seed 71 \(precision): NaN inputs loaded")
      } catch {
        guard case .nonFinite(_, let tensor, let index, let value, nil) = error else {
          Issue.record("\(error)")
          continue
        }
        #expect(tensor == "inputs" && index == [4, 2] && value.isNaN, "seed 71 \(precision)")
        #expect(error.description.contains("'inputs'[4, 2] is nan"), "\(error)")
      }
    }
    x[4, 2] = 0
    w[2, 5] = -.infinity
    #expect(
      throws: LayerProblemFileError.nonFinite(
        path: "p", tensor: "weight", index: [2, 5], value: -.infinity, precision: nil)
    ) {
      try problemFile(LayerProblemFile.writer(weight: w, inputs: x)).problem(as: Float.self)
    }
    // A finite F64 value beyond Float's range is reported with its stored value.
    var g = Matrix<Double>.identity(6)
    g[3, 3] = 1e300
    let big = try problemFile(
      LayerProblemFile.writer(weight: w.converted(to: Double.self).map { $0.isFinite ? $0 : 1 }, gram: g))
    #expect(
      throws: LayerProblemFileError.nonFinite(
        path: "p", tensor: "gram", index: [3, 3], value: 1e300, precision: "Float")
    ) {
      try big.problem(as: Float.self)
    }
    #expect(try big.problem(as: Double.self).gram[3, 3] == 1e300)
  }

  @Test func asymmetricGramIsRejected() throws {
    var rng = SplitMix64(seed: 81)
    var g = randomSPD(5, using: &rng)
    g[0, 3] += 0.5
    let w = Matrix<Double>.random(rows: 2, columns: 5, using: &rng)
    let error = try #require(
      loadError(LayerProblemFile.writer(weight: w, gram: g)), "seed 81: an asymmetric gram loaded")
    #expect(
      error == .asymmetric(path: "p", tensor: "gram", row: 0, column: 3, upper: g[0, 3], lower: g[3, 0]), "seed 81")
  }

  @Test func wrongDTypesAndCountsAreRejected() throws {
    let (w, x) = randomLayer(rows: 2, columns: 4, tokens: 8, seed: 91)
    var u8Gram = SafetensorsWriter()
    try u8Gram.add("weight", matrix: w)
    try u8Gram.add("gram", shape: [4, 4], .u8(Array(repeating: 0, count: 16)))
    #expect(
      throws: LayerProblemFileError.unsupportedDType(path: "p", tensor: "gram", dtype: .U8, allowed: [.F32, .F64])
    ) {
      try problemFile(u8Gram)
    }
    #expect(
      throws: LayerProblemFileError.invalidCount(path: "p", detail: "'count' says 9 tokens but 'inputs' has 8 rows")
    ) {
      try problemFile(LayerProblemFile.writer(weight: w, inputs: x, count: 9)).problem(as: Float.self)
    }
    var negative = try LayerProblemFile.writer(weight: w, inputs: x)
    try negative.add("count", shape: [1], .f64([-3]))
    #expect(throws: LayerProblemFileError.invalidCount(path: "p", detail: "'count' holds -3.0, not a token count")) {
      try problemFile(negative).problem(as: Float.self)
    }
  }

  // MARK: Masks

  @Test func masksLoadAndAreChecked() throws {
    let folder = TemporaryFolder("masks")
    defer { folder.remove() }
    var rng = SplitMix64(seed: 101)
    let kept = (0..<12).map { _ in Bool.random(using: &rng) }
    let mask = Mask(rows: 3, columns: 4, kept: kept)
    let url = folder.file("m.safetensors")
    try MaskFile.writer(mask).write(to: url)
    #expect(try MaskFile.load(contentsOf: url, rows: 3, columns: 4) == mask, "seed 101")
    #expect(try MaskFile.load(contentsOf: url) == mask, "seed 101")
    #expect(
      throws: LayerProblemFileError.shapeMismatch(
        path: url.path, tensor: "mask", shape: [3, 4], expected: "[4, 3]",
        reference: TensorShape(name: "weight", shape: [4, 3]))
    ) {
      try MaskFile.load(contentsOf: url, rows: 4, columns: 3)
    }
    // BOOL masks load too.
    let header = "{\"mask\":{\"dtype\":\"BOOL\",\"shape\":[1,3],\"data_offsets\":[0,3]}}"
    let bool = try SafetensorsFile(data: safetensorsBytes(header: header, buffer: [1, 0, 1]), name: "b")
    #expect(try MaskFile.load(bool) == Mask(rows: 1, columns: 3, kept: [true, false, true]))
    let two = try SafetensorsFile(data: safetensorsBytes(header: header, buffer: [1, 2, 1]), name: "b")
    #expect(throws: LayerProblemFileError.invalidMask(path: "b", index: [0, 1], value: 2)) { try MaskFile.load(two) }
    var f32 = SafetensorsWriter()
    try f32.add("mask", shape: [1, 2], .f32([1, 0]))
    #expect(
      throws: LayerProblemFileError.unsupportedDType(path: "f", tensor: "mask", dtype: .F32, allowed: [.U8, .BOOL])
    ) {
      try MaskFile.load(SafetensorsFile(data: f32.serialized(), name: "f"))
    }
    #expect(throws: LayerProblemFileError.self) {
      try MaskFile.load(SafetensorsFile(data: SafetensorsWriter().serialized(), name: "e"))
    }
  }

  @Test func prunedWeightFileHoldsExactZeros() throws {
    let w = Matrix<Double>(rows: 2, columns: 3, elements: [0, 1.5, -0.0, 0.1, 0, 3])
    let file = try SafetensorsFile(data: PrunedWeightFile.writer(w).serialized(), name: "w")
    #expect(file.rawDType(of: "weight") == .F32 && file.shape(of: "weight") == [2, 3])
    let v = try file.floatTensor("weight").values
    #expect(v == [0, 1.5, 0, Float(0.1), 0, 3])
    #expect(Mask(nonZerosOf: Matrix(rows: 2, columns: 3, elements: v)) == Mask(nonZerosOf: w))
  }

  @Test func everyErrorDescriptionIsOneLineWithAHint() {
    let errors: [LayerProblemFileError] = [
      .file(.truncated(path: "p", size: 1)), .missingTensor(path: "p", tensor: "t", hint: "h"),
      .shapeMismatch(
        path: "p", tensor: "t", shape: [1], expected: "[2]", reference: TensorShape(name: "w", shape: [2, 2])),
      .unsupportedDType(path: "p", tensor: "t", dtype: .I8, allowed: [.F32]),
      .nonFinite(path: "p", tensor: "t", index: [0, 1], value: .nan, precision: nil),
      .nonFinite(path: "p", tensor: "t", index: [0, 1], value: 1e300, precision: "Float"),
      .asymmetric(path: "p", tensor: "t", row: 0, column: 1, upper: 1, lower: 2), .invalidCount(path: "p", detail: "d"),
      .invalidMask(path: "p", index: [0, 0], value: 3), .problem(path: "p", .incompleteErrorCorrection),
      .problem(path: "p", .negativeTokenCount(-1)),
    ]
    for e in errors {
      #expect(!e.description.contains("\n") && e.description.contains("Hint: "), "\(e)")
    }
  }
}
