import PruneKernels
import Dispatch
nonisolated(unsafe) var rng = UInt64(1)
func r() -> Float { rng = rng &* 6364136223846793005 &+ 1442695040888963407; return Float(Int64(bitPattern: rng >> 11) % 1000) / 1000 }
for (m,n,k) in [(1,1,1),(7,17,3),(13,33,300),(145,800,257),(64,64,64)] {
  for ta in [false,true] { for tb in [false,true] {
  let a = Matrix<Float>(rows: ta ? k : m, columns: ta ? m : k) { _,_ in r() }
  let b = Matrix<Float>(rows: tb ? n : k, columns: tb ? k : n) { _,_ in r() }
  var c1 = Matrix<Float>(rows: m, columns: n) { _,_ in r() }
  var c2 = c1
  gemm(a, b, into: &c1, transposeA: ta, transposeB: tb, alpha: 0.5, beta: 2)
  gemmReference(a, b, into: &c2, transposeA: ta, transposeB: tb, alpha: 0.5, beta: 2)
  var maxd: Float = 0
  for i in 0..<c1.elements.count { maxd = max(maxd, abs(c1.elements[i]-c2.elements[i])) }
  print(m,n,k,ta,tb,maxd)
  }}
}
let n = 1024
let a = Matrix<Float>(rows: n, columns: n) { _,_ in r() }
var c = Matrix<Float>(rows: n, columns: n)
for t in [1,2] {
  for _ in 0..<5 {
    let t0 = DispatchTime.now().uptimeNanoseconds
    gemm(a, a, into: &c, threads: t)
    let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    print("threads", t, 2*Double(n*n*n)/dt/1e9)
  }
}
