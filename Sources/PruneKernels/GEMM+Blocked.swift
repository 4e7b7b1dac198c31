// The blocked GEMM: BLIS's five loops around the micro-kernel.
//
//   for jc in 0..<n by nc                       ── columns of C and B in blocks of nc
//     for pc in 0..<k by kc                     ── the shared dimension in blocks of kc
//       pack B̃ ← op(B)[pc..<pc+kc, jc..<jc+nc]     (kc × nc, in NR-wide micro-panels; ~L3)
//       for ic in 0..<m by mc                   ── rows of C and A in blocks of mc (split over threads)
//         pack Ã ← op(A)[ic..<ic+mc, pc..<pc+kc]   (mc × kc, in MR-tall micro-panels; ~L2)
//         for jr in 0..<nc by NR                ── one B̃ micro-panel (kc × NR; ~L1)
//           for ir in 0..<mc by MR              ── one Ã micro-panel
//             micro-kernel: C[ir, jr] (MR × NR) ← α·Ã(ir)·B̃(jr) + β′·C[ir, jr]
//
// with β′ = β for the first kc block and 1 afterwards. Packed layouts (element order in memory):
//
//   Ã, one micro-panel (MR = 6 rows, kc columns)      B̃, one micro-panel (kc rows, NR columns)
//     p=0      p=1      p=2                             p=0: b00 b01 … b0,NR−1
//     a00 a10 … a50 | a01 a11 … a51 | a02 …               p=1: b10 b11 … b1,NR−1
//     (MR contiguous per column p)                         (NR contiguous per row p)
//
// Micro-panels are padded with zeros up to MR rows / NR columns, so one kernel serves every shape:
// an edge tile runs the full kernel into a scratch tile and only its valid part is stored.
//
// Determinism. An element C[i, j] is reduced over p in kc blocks in increasing order, and inside a
// block by the micro-kernel in increasing p. kc is a function of k alone (balanced: k is cut into
// ⌈k/KC⌉ equal blocks), so the result does not depend on the thread count or on which thread
// computed the tile: threads split the ic rows (or the jr panels when m is small) and never the
// shared dimension.
//
// Parallelism: one `concurrentPerform` per call. Inside it the threads walk the (jc, pc) blocks in
// the same order and share the work of each block through atomic counters: first they claim B̃
// micro-panels to pack (B̃ is packed once and shared, as in BLIS), wait until all are packed, then
// claim compute items (a run of rows against all panels, or a run of panels when m is small), each
// packing its own Ã. A thread waits only for items another *running* thread has claimed, so this
// never deadlocks even if `concurrentPerform` runs the iterations one after the other; a thread
// slowed down by the machine simply claims fewer items.

/// Cache and register blocking of the blocked GEMM, in BLIS's names.
///
/// - `mr × nr`: the register tile of the micro-kernel (fixed per precision).
/// - `kc`: depth of a packed block; one B̃ micro-panel (kc × nr) stays in L1.
/// - `mc`: rows of a packed Ã block (mc × kc), sized for L2.
/// - `nc`: columns of the shared packed B̃ block (kc × nc), sized for L3.
public struct GEMMBlocking: Sendable, Equatable, CustomStringConvertible {
  public let mr: Int
  public let nr: Int
  public let kc: Int
  public let mc: Int
  public let nc: Int

  public init(mr: Int, nr: Int, kc: Int, mc: Int, nc: Int) {
    precondition(mr > 0 && nr > 0 && kc > 0 && mc > 0 && nc > 0, "GEMMBlocking: sizes must be positive")
    precondition(mc % mr == 0 && nc % nr == 0, "GEMMBlocking: mc must be a multiple of mr, nc of nr")
    self.mr = mr
    self.nr = nr
    self.kc = kc
    self.mc = mc
    self.nc = nc
  }

  // The register tile is the micro-kernel's (6 × 16 Float and 6 × 8 Double with AVX2, 6 × 64 and
  // 6 × 32 with AVX-512); the cache blocking kc/mc/nc is the same for both instruction sets, so
  // that an AVX2 and an AVX-512 machine reduce every element in the same k blocks and give
  // bit-identical results. (Measured with the AVX-512 kernels, 2026-11-26, `prune-bench tune`: on
  // the wide Gram every kc/mc/nc in 256–1024 / 24–144 / 768–3072 was within 3 % of these, and on
  // DGEMM 768×3072·3072² within 2 %, inside the machine's noise.)

  /// Float: kc = 768, mc = 48, nc = 768. A deep kc is the measured winner on this Zen 5 machine
  /// (`prune-bench tune`, 1 thread, interleaved rounds): every pruning product with k ≤ 768 runs
  /// as a single k block, so each C tile is loaded and stored once, and larger k has few blocks.
  /// kc = 384/mc = 144 (the first choice, sized so the B̃ micro-panel sat in half of L1) ran at
  /// 0.86–0.93 of kc = 768 on 1536×576·576², 768×3072·3072² and 2048³ (AVX2 kernel). Footprints
  /// (AVX2): Ã micro-panel 6 × 768 × 4 B = 18 KiB, B̃ micro-panel 768 × 16 × 4 B = 48 KiB (streamed
  /// from L2), Ã block 48 × 768 × 4 B = 144 KiB, B̃ block 768 × 768 × 4 B = 2.25 MiB (L3).
  public static func float(_ isa: KernelISA = .active) -> GEMMBlocking {
    GEMMBlocking(tileOf: Float.microKernel(for: isa), kc: 768, mc: 48, nc: 768)
  }

  /// Double: kc = 768, mc = 48, nc = 768, chosen the same way (kc = 256/mc = 72 ran at 0.84–0.93
  /// of it on 3072×768·768², 1536×576·576² and 2048³). Ã block 48 × 768 × 8 B = 288 KiB,
  /// B̃ micro-panel 768 × 8 × 8 B = 48 KiB (AVX2), B̃ block 768 × 768 × 8 B = 4.5 MiB (L3).
  public static func double(_ isa: KernelISA = .active) -> GEMMBlocking {
    GEMMBlocking(tileOf: Double.microKernel(for: isa), kc: 768, mc: 48, nc: 768)
  }

  /// The Gram kernel's blockings: the earlier, shallower kc. A Gram reduces over thousands of
  /// tokens, so kc only sets how often the (triangular) C tiles are revisited, and with kc = 768
  /// the Gram of X [16384 × 576…3072] ran 3–6 % slower than with these (AVX2, measured 2026-11-26).
  public static func floatGram(_ isa: KernelISA = .active) -> GEMMBlocking {
    GEMMBlocking(tileOf: Float.microKernel(for: isa), kc: 384, mc: 144, nc: 768)
  }
  public static func doubleGram(_ isa: KernelISA = .active) -> GEMMBlocking {
    GEMMBlocking(tileOf: Double.microKernel(for: isa), kc: 256, mc: 72, nc: 768)
  }

  /// `kernel`'s register tile with the cache blocking kc, mc, nc.
  public init<T>(tileOf kernel: MicroKernel<T>, kc: Int, mc: Int, nc: Int) {
    self.init(mr: kernel.mr, nr: kernel.nr, kc: kc, mc: mc, nc: nc)
  }

  public var description: String { "mr=\(mr) nr=\(nr) kc=\(kc) mc=\(mc) nc=\(nc)" }

  /// The depth of the blocks a product over a shared dimension of `k` is reduced in: kc balanced
  /// over k, ⌈k/kc⌉ blocks of (almost) equal depth, a function of k alone (the last block may be
  /// shorter). `gemmBlocked` uses it.
  public func balancedDepth(_ k: Int) -> Int {
    guard k > 0 else { return 0 }
    let blocks = (k + kc - 1) / kc
    return (k + blocks - 1) / blocks
  }

  /// The ranges of the shared dimension, in order, that a product of depth `k` is reduced in
  /// (`balancedDepth`). Each C element sums these blocks in this order, each block by the
  /// micro-kernel and then added to C; so adding the products of these row ranges in turn, one call
  /// each with β = 1, gives the same bits as one call over all k. A caller can thus stream the rows
  /// of a long reduction (the calibration Grams of PrunePipeline) without holding them all.
  public func depthBlocks(_ k: Int) -> [Range<Int>] {
    let depth = balancedDepth(k)
    return depth == 0 ? [] : stride(from: 0, to: k, by: depth).map { $0..<min(k, $0 + depth) }
  }
}

/// Which tiles of C the driver computes.
enum GEMMRegion {
  /// Every tile.
  case full
  /// Only tiles that touch the upper triangle (j ≥ i) of a square C; tiles entirely below the
  /// diagonal are skipped. Used by the Gram kernel, which mirrors the result afterwards.
  case upperTriangle
}

/// Element (i, p) of op(X) is at `base[i·rowStride + p·columnStride]`.
struct StridedOperand<T>: @unchecked Sendable {
  let base: UnsafePointer<T>
  let rowStride: Int
  let columnStride: Int
}

/// Below this many flops per thread a second thread costs more than it saves.
let defaultMinimumFlopsPerThread = 4.0e6

/// The blocked GEMM driver (see the loop nest at the top of the file).
///
/// C ← α·op(A)·op(B) + β·C over `region`; op(A): [m × k], op(B): [k × n], C: [m × n] with row
/// stride `ldc`. `blocking.mr/nr` must be those of `T`'s micro-kernel; kc, mc and nc are free
/// (the tests shrink them to reach every cache-block remainder with small matrices).
func gemmBlocked<T: KernelScalar>(
  m: Int, n: Int, k: Int, alpha: T, a: StridedOperand<T>, b: StridedOperand<T>,
  beta: T, c: UnsafeMutablePointer<T>, ldc: Int, threads: Int, blocking: GEMMBlocking,
  region: GEMMRegion, minimumFlopsPerThread: Double = defaultMinimumFlopsPerThread
) {
  let MR = blocking.mr
  let NR = blocking.nr
  let kernel = T.microKernel(mr: MR, nr: NR)
  if m == 0 || n == 0 { return }
  if k == 0 || alpha == 0 {
    scaleC(m: m, n: n, beta: beta, c: c, ldc: ldc, region: region)
    return
  }

  // kc balanced over k: ⌈k/KC⌉ blocks of (almost) equal depth, a function of k only.
  let kc = blocking.balancedDepth(k)
  let nc = blocking.nc
  let mc = blocking.mc
  let ncAlloc = min(nc, (n + NR - 1) / NR * NR)
  let mcAlloc = min(mc, (m + MR - 1) / MR * MR)

  var flops = 2.0 * Double(m) * Double(n) * Double(k)
  if region == .upperTriangle { flops /= 2 }
  let t = max(1, min(threads, Int(flops / max(1, minimumFlopsPerThread))))

  // The (jc, pc) blocks in order, with how their compute work is cut into items.
  var blocks: [GEMMBlock] = []
  for jc in stride(from: 0, to: n, by: nc) {
    let nb = min(nc, n - jc)
    let panels = (nb + NR - 1) / NR
    // In the upper-triangle region, rows at or below jc + nb − 1 are the only ones needed.
    let mEnd = region == .upperTriangle ? min(m, jc + nb) : m
    let rowTiles = (mEnd + MR - 1) / MR
    // Items: with one thread, mc blocks of rows; with several, runs of rows of decreasing size
    // (guided scheduling: each item is about 1/(2t) of what is left), so that the last items are
    // one tile and no thread waits long at the end of a block. When there are too few row tiles
    // to share, all rows against runs of panels instead.
    var rowBounds: [Int]
    var panelBounds: [Int]
    if t == 1 {
      rowBounds = Array(stride(from: 0, to: mEnd, by: mc)) + [mEnd]
      panelBounds = [0, panels]
    } else if rowTiles >= 2 * t {
      rowBounds = guidedBounds(units: rowTiles, workers: t, maxUnits: mc / MR).map { min(mEnd, $0 * MR) }
      panelBounds = [0, panels]
    } else {
      rowBounds = [0, mEnd]
      panelBounds = guidedBounds(units: panels, workers: t, maxUnits: panels)
    }
    for pc in stride(from: 0, to: k, by: kc) {
      blocks.append(
        GEMMBlock(
          jc: jc, nb: nb, panels: panels, pc: pc, kb: min(kc, k - pc), rowBounds: rowBounds,
          panelBounds: panelBounds))
    }
  }

  let bPackRaw = UnsafeMutableRawPointer.allocate(
    byteCount: kc * ncAlloc * MemoryLayout<T>.stride, alignment: 64)
  defer { bPackRaw.deallocate() }
  let aPackStride = kc * mcAlloc
  let aPackRaw = UnsafeMutableRawPointer.allocate(
    byteCount: t * aPackStride * MemoryLayout<T>.stride, alignment: 64)
  defer { aPackRaw.deallocate() }
  let bPack = SendablePointer(bPackRaw.bindMemory(to: T.self, capacity: kc * ncAlloc))

  // Diagonal tiles of a Gram with a wide register tile. A tile straddling the diagonal computes
  // every column of its NR-wide panel, though row i needs only columns j ≥ i: on average NR/2
  // wasted columns per row, 11 % of a 576-feature Float Gram with NR = 64. Such tiles instead run
  // the narrow (baseline) kernel over the NR_n-wide slices of the panel that hold a needed column,
  // from a second copy of B̃ packed NR_n wide. Both kernels reduce an element the same way, so the
  // result does not change, only the waste.
  let narrow: MicroKernel<T>? = {
    let n0 = T.microKernel(for: .baseline)
    return region == .upperTriangle && n0.mr == MR && n0.nr < NR && NR % n0.nr == 0 ? n0 : nil
  }()
  // Slices start at multiples of NR_n below ncAlloc (a multiple of NR), so kc·ncAlloc suffices.
  let bNarrowRaw = narrow.map { _ in
    UnsafeMutableRawPointer.allocate(byteCount: kc * ncAlloc * MemoryLayout<T>.stride, alignment: 64)
  }
  defer { bNarrowRaw?.deallocate() }
  let bNarrow = bNarrowRaw.map { SendablePointer($0.bindMemory(to: T.self, capacity: kc * ncAlloc)) }
  let aPacks = SendablePointer(aPackRaw.bindMemory(to: T.self, capacity: t * aPackStride))
  let cOut = SendablePointer(c)
  let counters = WorkCounters(count: 4 * blocks.count)
  defer { counters.deallocate() }
  let plan = blocks

  parallelFor(t) { tid in
    let aPack = aPacks.base + tid * aPackStride
    for (index, blk) in plan.enumerated() {
      let betaBlock: T = blk.pc == 0 ? beta : 1
      let packClaim = 4 * index
      let packDone = 4 * index + 1
      let itemClaim = 4 * index + 2
      let itemDone = 4 * index + 3

      // 1. Pack B̃ = op(B)[pc..<pc+kb, jc..<jc+nb], micro-panel q at bPack + q·kb·NR.
      while true {
        let q = counters.claim(packClaim)
        if q >= blk.panels { break }
        packBPanel(
          b, rows: blk.pc, depth: blk.kb, column: blk.jc + q * NR, width: min(NR, blk.nb - q * NR),
          NR: NR, into: bPack.base + q * blk.kb * NR)
        if let narrow, let bNarrow {
          // The same panel as NR/NR_n slices of NR_n columns, slice s at (q·NR/NR_n + s)·kb·NR_n.
          let nrN = narrow.nr
          for s in 0..<(NR / nrN) where q * NR + s * nrN < blk.nb {
            packBPanel(
              b, rows: blk.pc, depth: blk.kb, column: blk.jc + q * NR + s * nrN,
              width: min(nrN, blk.nb - q * NR - s * nrN), NR: nrN,
              into: bNarrow.base + (q * NR + s * nrN) * blk.kb)
          }
        }
        counters.complete(packDone)
      }
      counters.wait(packDone, reaches: blk.panels)

      // 2. Compute items: rows × panels, in mc blocks of rows, each with its own Ã.
      let itemCount = blk.itemCount
      while true {
        let item = counters.claim(itemClaim)
        if item >= itemCount { break }
        let (rows, panelRange) = blk.item(item)
        for ic in stride(from: rows.lowerBound, to: rows.upperBound, by: mc) {
          let mb = min(mc, rows.upperBound - ic)
          packABlock(a, row: ic, height: mb, column: blk.pc, depth: blk.kb, MR: MR, into: aPack)
          let tiles = (mb + MR - 1) / MR
          for q in panelRange {
            let j0 = blk.jc + q * NR
            let nEff = min(NR, n - j0)
            let bMicro = UnsafePointer(bPack.base + q * blk.kb * NR)
            for r in 0..<tiles {
              let i0 = ic + r * MR
              // Tiles strictly below the diagonal (every i > every j) are skipped.
              if region == .upperTriangle && i0 >= j0 + nEff { break }
              let mEff = min(MR, ic + mb - i0)
              let aMicro = UnsafePointer(aPack + r * blk.kb * MR)
              let cTile = cOut.base + i0 * ldc + j0
              if let narrow, let bNarrow, i0 + mEff - 1 > j0 {
                // Straddles the diagonal: slices whose last column is ≥ i0 (a needed column).
                let nrN = narrow.nr
                var s0 = max(0, i0 - j0) / nrN
                while s0 * nrN < nEff {
                  let width = min(nrN, nEff - s0 * nrN)
                  let bSlice = UnsafePointer(bNarrow.base + (q * NR + s0 * nrN) * blk.kb)
                  if mEff == MR && width == nrN {
                    narrow.run(blk.kb, aMicro, bSlice, cTile + s0 * nrN, ldc, alpha, betaBlock)
                  } else {
                    edgeTile(
                      narrow, blk.kb, aMicro, bSlice, cTile + s0 * nrN, ldc, alpha, betaBlock,
                      rows: mEff, columns: width)
                  }
                  s0 += 1
                }
              } else if mEff == MR && nEff == NR {
                kernel.run(blk.kb, aMicro, bMicro, cTile, ldc, alpha, betaBlock)
              } else {
                edgeTile(
                  kernel, blk.kb, aMicro, bMicro, cTile, ldc, alpha, betaBlock, rows: mEff,
                  columns: nEff)
              }
            }
          }
        }
        counters.complete(itemDone)
      }
      // B̃ is overwritten by the next block, and C is updated again: wait for every item.
      counters.wait(itemDone, reaches: itemCount)
    }
  }
}

/// One (jc, pc) block of the loop nest and how its compute work is cut into items.
struct GEMMBlock: Sendable {
  let jc: Int, nb: Int, panels: Int
  let pc: Int, kb: Int
  /// Item boundaries: rows rowBounds[r]..<rowBounds[r+1] against panels
  /// panelBounds[q]..<panelBounds[q+1]; one of the two lists has a single range.
  let rowBounds: [Int]
  let panelBounds: [Int]

  var itemCount: Int { (rowBounds.count - 1) * (panelBounds.count - 1) }

  /// The rows and panels of item i (row-major over the item grid).
  func item(_ i: Int) -> (rows: Range<Int>, panels: Range<Int>) {
    let panelItems = panelBounds.count - 1
    let r = i / panelItems
    let q = i % panelItems
    return (rowBounds[r]..<rowBounds[r + 1], panelBounds[q]..<panelBounds[q + 1])
  }
}

/// Boundaries 0 = b₀ < b₁ < … < bₙ = units of guided-scheduling chunks: each chunk is
/// ⌈remaining / (2·workers)⌉ units, at most `maxUnits`.
func guidedBounds(units: Int, workers: Int, maxUnits: Int) -> [Int] {
  var bounds = [0]
  var done = 0
  while done < units {
    let remaining = units - done
    done += max(1, min(maxUnits, (remaining + 2 * workers - 1) / (2 * workers)))
    bounds.append(min(done, units))
  }
  return bounds
}

/// An edge tile: the full micro-kernel into a scratch MR × NR tile (α = 1, β = 0, which is exact:
/// the raw sums), then Cᵢⱼ ← α·s or fma(β, Cᵢⱼ, α·s) for the valid part, the same arithmetic as the
/// kernel's own store.
@inline(never)
func edgeTile<T: KernelScalar>(
  _ kernel: MicroKernel<T>, _ kb: Int, _ a: UnsafePointer<T>, _ b: UnsafePointer<T>,
  _ c: UnsafeMutablePointer<T>, _ ldc: Int, _ alpha: T, _ beta: T, rows: Int, columns: Int
) {
  let NR = kernel.nr
  withUnsafeTemporaryAllocation(of: T.self, capacity: kernel.mr * NR) { scratch in
    let s = scratch.baseAddress!
    kernel.run(kb, a, b, s, NR, 1, 0)
    for r in 0..<rows {
      for j in 0..<columns {
        let v = alpha * s[r * NR + j]
        let p = c + r * ldc + j
        p.pointee = beta == 0 ? v : v.addingProduct(beta, p.pointee)
      }
    }
  }
}

/// C ← β·C over the region (C not read when β = 0); the k = 0 or α = 0 case.
func scaleC<T: KernelScalar>(
  m: Int, n: Int, beta: T, c: UnsafeMutablePointer<T>, ldc: Int, region: GEMMRegion
) {
  for i in 0..<m {
    let start = region == .upperTriangle ? min(i, n) : 0
    for j in start..<n {
      c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j]
    }
  }
}

/// Packs op(A)[row..<row+height, column..<column+depth] into ⌈height/MR⌉ micro-panels of
/// depth × MR (MR contiguous per column), zero-padding the last panel's missing rows.
@inline(__always)
func packABlock<T: KernelScalar>(
  _ a: StridedOperand<T>, row: Int, height: Int, column: Int, depth: Int, MR: Int,
  into dst: UnsafeMutablePointer<T>
) {
  if a.rowStride == 1 && a.columnStride != 1 {
    // Columns of A are contiguous along i (A stored transposed, e.g. the Gram's Xᵀ): walk a
    // few p at a time outside and the panels inside, so each source column is read once, front
    // to back, and each panel receives a contiguous run of 8·MR elements. (Panel-outer order
    // reads `depth` columns `columnStride` apart once per panel; with wide X that stride aliases
    // to a few cache sets and every panel re-reads them from L3. One p at a time scatters single
    // MR-groups over all panels, and the packing took 13 % of a 576-feature Gram.)
    let panels = (height + MR - 1) / MR
    let pStep = 8
    for p0 in stride(from: 0, to: depth, by: pStep) {
      let pEnd = min(p0 + pStep, depth)
      for q in 0..<panels {
        let r0 = q * MR
        let rEff = min(MR, height - r0)
        var out = dst + q * depth * MR + p0 * MR
        var src = a.base + (column + p0) * a.columnStride + row + r0
        if rEff == 6 && MR == 6 {
          for _ in p0..<pEnd {
            out[0] = src[0]
            out[1] = src[1]
            out[2] = src[2]
            out[3] = src[3]
            out[4] = src[4]
            out[5] = src[5]
            out += 6
            src += a.columnStride
          }
        } else {
          for _ in p0..<pEnd {
            for rr in 0..<rEff { out[rr] = src[rr] }
            for rr in rEff..<MR { out[rr] = 0 }
            out += MR
            src += a.columnStride
          }
        }
      }
    }
    return
  }
  var r0 = 0
  var panel = dst
  while r0 < height {
    let rEff = min(MR, height - r0)
    if a.columnStride == 1 && rEff == 6 && MR == 6 {
      // Rows of A are contiguous along p: six row streams, one contiguous MR-group per p.
      let s0 = a.base + (row + r0) * a.rowStride + column
      let s1 = s0 + a.rowStride
      let s2 = s1 + a.rowStride
      let s3 = s2 + a.rowStride
      let s4 = s3 + a.rowStride
      let s5 = s4 + a.rowStride
      var out = panel
      for p in 0..<depth {
        out[0] = s0[p]
        out[1] = s1[p]
        out[2] = s2[p]
        out[3] = s3[p]
        out[4] = s4[p]
        out[5] = s5[p]
        out += 6
      }
    } else if a.columnStride == 1 {
      for p in 0..<depth {
        for rr in 0..<MR {
          panel[p * MR + rr] = rr < rEff ? a.base[(row + r0 + rr) * a.rowStride + column + p] : 0
        }
      }
    } else {
      // Columns of A are contiguous along i (A stored transposed): copy MR-runs.
      for p in 0..<depth {
        let src = a.base + (column + p) * a.columnStride + (row + r0) * a.rowStride
        let out = panel + p * MR
        for rr in 0..<rEff { out[rr] = src[rr * a.rowStride] }
        for rr in rEff..<MR { out[rr] = 0 }
      }
    }
    r0 += MR
    panel += depth * MR
  }
}

/// Packs op(B)[row..<row+depth, column..<column+width] (width ≤ NR) into one depth × NR
/// micro-panel (NR contiguous per row), zero-padding missing columns.
@inline(__always)
func packBPanel<T: KernelScalar>(
  _ b: StridedOperand<T>, rows row: Int, depth: Int, column: Int, width: Int, NR: Int,
  into dst: UnsafeMutablePointer<T>
) {
  let rowBytes = NR * MemoryLayout<T>.stride
  if b.columnStride == 1 && width == NR && rowBytes % 32 == 0 {
    // A full row of the micro-panel is 64 bytes (AVX2 tiles) or 256 bytes (AVX-512 tiles) in
    // both precisions: 32-byte moves.
    for p in 0..<depth {
      let src = UnsafeRawPointer(b.base + (row + p) * b.rowStride + column)
      let out = UnsafeMutableRawPointer(dst + p * NR)
      for offset in stride(from: 0, to: rowBytes, by: 32) {
        out.storeBytes(
          of: src.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self), toByteOffset: offset,
          as: SIMD8<Float>.self)
      }
    }
  } else if b.columnStride == 1 {
    for p in 0..<depth {
      let src = b.base + (row + p) * b.rowStride + column
      let out = dst + p * NR
      for j in 0..<width { out[j] = src[j] }
      for j in width..<NR { out[j] = 0 }
    }
  } else {
    // B stored transposed: each column of op(B) is contiguous along p.
    for j in 0..<width {
      let src = b.base + (column + j) * b.columnStride + row * b.rowStride
      for p in 0..<depth { dst[p * NR + j] = src[p * b.rowStride] }
    }
    if width < NR {
      for p in 0..<depth {
        for j in width..<NR { dst[p * NR + j] = 0 }
      }
    }
  }
}
