import PruneTestSupport
import Testing

@testable import PruneKernels

// The oracle λmax comes from the cyclic Jacobi method in Double on the same matrix; its error is a
// few ulps of ‖A‖_F, so "never underestimates" is checked as bound ≥ λ_Jacobi − 8n·u·‖A‖_F.
// Tightness: a bound certified by Cholesky overshoots λmax by at most max(gap₀, 3(λmax − μ)) plus
// the margin c, with gap₀ = max(r, 1e-6·|μ|, 1e-12·Gershgorin) (EigenvalueBound.swift); the margin
// c is allowed as 1e-8·|λmax|.

struct Spectrum: Sendable, CustomTestStringConvertible {
  let name: String
  let make: @Sendable (inout SplitMix64) -> Matrix<Double>
  var testDescription: String { name }

  static let all: [Spectrum] = [
    Spectrum(name: "random Gram XᵀX (60 × 40)") { rng in randomSPD(40, tokens: 60, using: &rng) },
    Spectrum(name: "rank-1 vvᵀ") { rng in
      let v = Matrix<Double>.random(rows: 1, columns: 35, using: &rng)
      return gram(v)
    },
    Spectrum(name: "clustered top: 1, 1 − 1e-9, 1 − 2e-9, then 0.5") { rng in
      symmetricMatrix(spectrum: [1, 1 - 1e-9, 1 - 2e-9] + Array(repeating: 0.5, count: 27), using: &rng)
    },
    Spectrum(name: "slow power iteration: 1, 0.999, 0.998, …") { rng in
      symmetricMatrix(spectrum: (0..<30).map { 1 - 0.001 * Double($0) }, using: &rng)
    },
    Spectrum(name: "all equal eigenvalues (scaled identity in disguise)") { rng in
      symmetricMatrix(spectrum: Array(repeating: 3, count: 25), using: &rng)
    },
    Spectrum(name: "singular PSD with a dead feature") { rng in
      var g = randomSPD(20, tokens: 8, using: &rng)
      for i in 0..<20 {
        g[3, i] = 0
        g[i, 3] = 0
      }
      return g
    },
    Spectrum(name: "indefinite symmetric") { rng in
      symmetricMatrix(spectrum: (0..<20).map { Double($0) - 15 }, using: &rng)
    },
    Spectrum(name: "huge scale (1e30)") { rng in randomSPD(15, using: &rng).map { $0 * 1e30 } },
    Spectrum(name: "tiny scale (1e-30)") { rng in randomSPD(15, using: &rng).map { $0 * 1e-30 } },
    Spectrum(name: "1 × 1") { _ in Matrix(rows: 1, columns: 1, elements: [2.5]) },
  ]
}

@Suite("Certified upper bound on λmax")
struct EigenvalueBoundTests {
  @Test("never below λmax, and tight when certified by Cholesky", arguments: Spectrum.all, Precision.allCases)
  func bound(_ s: Spectrum, _ p: Precision) {
    var rng = SplitMix64(seed: 77)
    let aD = s.make(&rng)
    func run<T: KernelScalar>(_: T.Type) {
      let a = aD.converted(to: T.self)
      let exact = jacobiEigenvalues(a.converted(to: Double.self)).last!
      let oracleError = 8 * Double(a.rows) * Double.ulpOfOne * a.converted(to: Double.self).frobeniusNorm
      let b = largestEigenvalueUpperBound(a)
      #expect(b.upperBound >= exact - oracleError, "\(s.name) \(T.self): bound \(b.upperBound) < λmax \(exact)")
      #expect(
        b.lowerBound <= exact + oracleError, "\(s.name) \(T.self): Rayleigh quotient \(b.lowerBound) > λmax \(exact)")
      if case .cholesky = b.certificate {
        var gershgorin = 0.0
        for i in 0..<a.rows { gershgorin = max(gershgorin, a.row(i).reduce(0.0) { $0 + abs(Double($1)) }) }
        let gap0 = max(b.residual, 1e-6 * abs(b.lowerBound), 1e-12 * gershgorin)
        let allowed = max(gap0, 3 * (exact - b.lowerBound)) + 1e-8 * abs(exact) + oracleError
        #expect(b.upperBound - exact <= allowed, "\(s.name) \(T.self): overshoot \(b.upperBound - exact) > \(allowed)")
      }
    }
    p == .float ? run(Float.self) : run(Double.self)
  }

  @Test("the zero matrix has bound 0, and Gershgorin is the fallback's ceiling")
  func zeroAndCeiling() {
    let z = largestEigenvalueUpperBound(Matrix<Float>(rows: 4, columns: 4))
    #expect(z.upperBound == 0 && z.certificate == .zeroMatrix)
    var rng = SplitMix64(seed: 78)
    let a = randomSPD(30, using: &rng)
    var gershgorin = 0.0
    for i in 0..<30 { gershgorin = max(gershgorin, a.row(i).reduce(0) { $0 + abs($1) }) }
    let b = largestEigenvalueUpperBound(a)
    #expect(b.upperBound <= gershgorin * (1 + 1e-12))
  }
}
