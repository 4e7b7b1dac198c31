import Foundation
import PruneTestSupport
import Testing

@testable import PrunePipeline

/// `LineChart.svg()` and `BarChart.svg()`: deterministic, well-formed XML, data inside the plot
/// area in the right order, clipping of values that cannot be drawn, escaping of text; and the
/// chart `SweepTable.chart()` chooses (bars for one sparsity, lines for several).
@Suite("SVG charts")
struct SVGChartTests {
  /// Half a unit of the last written decimal (coordinates have 2 decimals).
  static let rounding = 0.005

  /// A perplexity-vs-sparsity sweep with random values (seeded), three methods.
  static func sweep(seed: UInt64, logY: Bool) -> LineChart {
    var rng = SplitMix64(seed: seed)
    let methods = ["magnitude", "wanda", "sparsegpt"]
    let series = methods.map { name -> (name: String, points: [(x: Double, y: Double)]) in
      (name, (1...9).map { k in (Double(k) / 10, 20 + Double(rng.next() % 10_000) / 40) })
    }
    return LineChart(title: "SmolLM2 perplexity", xLabel: "sparsity", yLabel: "perplexity", series: series, logY: logY)
  }

  /// nil when `svg` is well-formed XML (one root element, balanced tags, quoted attributes without
  /// '<', only the five predefined entities); otherwise what is wrong.
  static func wellFormedness(_ svg: String) -> String? {
    let c = Array(svg.unicodeScalars)
    var stack: [String] = []
    var roots = 0
    var i = 0
    func entityOK(_ at: Int) -> Bool {
      ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains { e in
        at + e.unicodeScalars.count <= c.count && c[at..<(at + e.unicodeScalars.count)].elementsEqual(e.unicodeScalars)
      }
    }
    while i < c.count {
      if c[i] == "<" {
        guard let end = c[i...].firstIndex(of: ">") else { return "unterminated tag at \(i)" }
        var body = Array(c[(i + 1)..<end])
        if body.first == "/" {
          let name = String(String.UnicodeScalarView(body.dropFirst()))
          guard stack.popLast() == name else { return "</\(name)> does not close the open element at \(i)" }
        } else {
          let selfClosing = body.last == "/"
          if selfClosing { body.removeLast() }
          var j = 0
          while j < body.count && !body[j].properties.isWhitespace { j += 1 }
          let name = String(String.UnicodeScalarView(body[0..<j]))
          guard !name.isEmpty else { return "empty tag name at \(i)" }
          var attributes = Set<String>()
          while j < body.count {
            while j < body.count && body[j].properties.isWhitespace { j += 1 }
            if j == body.count { break }
            let start = j
            while j < body.count && body[j] != "=" { j += 1 }
            let attribute = String(String.UnicodeScalarView(body[start..<j]))
            guard j + 1 < body.count, body[j + 1] == "\"", attributes.insert(attribute).inserted else {
              return "attribute '\(attribute)' of <\(name)> is unquoted or repeated"
            }
            j += 2
            while j < body.count && body[j] != "\"" {
              if body[j] == "<" || (body[j] == "&" && !entityOK(i + 1 + j)) {
                return "bad character in \(attribute) of <\(name)>"
              }
              j += 1
            }
            guard j < body.count else { return "unterminated value of \(attribute) in <\(name)>" }
            j += 1
          }
          if stack.isEmpty { roots += 1 }
          if !selfClosing { stack.append(name) }
        }
        i = end + 1
      } else {
        if stack.isEmpty && !c[i].properties.isWhitespace { return "text outside the root element at \(i)" }
        if c[i] == ">" || (c[i] == "&" && !entityOK(i)) { return "unescaped '\(c[i])' in text at \(i)" }
        i += 1
      }
    }
    if !stack.isEmpty { return "unclosed elements \(stack)" }
    return roots == 1 ? nil : "\(roots) root elements"
  }

  /// The checker itself rejects what it must.
  @Test func wellFormednessCheckerRejectsBrokenXML() {
    #expect(Self.wellFormedness("<svg><g/></svg>") == nil)
    for broken in [
      "<svg><g></svg>", "<svg></g>", "<svg a=\"<\"/>", "<svg>a & b</svg>", "<svg a=1/>", "<svg/><svg/>",
      "<svg a=\"1\" a=\"2\"/>", "<svg>x > y</svg>", "text<svg/>",
    ] {
      #expect(Self.wellFormedness(broken) != nil, "\(broken) accepted")
    }
  }

  /// The (x, y) coordinates drawn for the data: every polyline vertex and marker of the series groups.
  static func dataCoordinates(_ svg: String) -> (
    lines: [[(Double, Double)]], markers: [(href: String, x: Double, y: Double)]
  ) {
    var lines: [[(Double, Double)]] = []
    var markers: [(String, Double, Double)] = []
    for group in svg.components(separatedBy: "<g class=\"series\"").dropFirst() {
      let body = group.components(separatedBy: "</g>")[0]
      for line in body.split(separator: "\n") {
        func attribute(_ name: String) -> String? {
          guard let r = line.range(of: " \(name)=\"") else { return nil }
          return String(line[r.upperBound...].prefix { $0 != "\"" })
        }
        if line.hasPrefix("<polyline"), let points = attribute("points") {
          lines.append(
            points.split(separator: " ").map { p in
              let xy = p.split(separator: ",").map { Double($0)! }
              return (xy[0], xy[1])
            })
        } else if line.hasPrefix("<use"), let href = attribute("xlink:href"), let x = attribute("x"),
          let y = attribute("y")
        {
          markers.append((href, Double(x)!, Double(y)!))
        }
      }
    }
    return (lines, markers)
  }

  @Test(arguments: [(UInt64(1), false), (2, true), (3, false)])
  func deterministicWellFormedAndInsideThePlot(_ seed: UInt64, _ logY: Bool) throws {
    let chart = Self.sweep(seed: seed, logY: logY)
    let svg = chart.svg()
    #expect(svg == Self.sweep(seed: seed, logY: logY).svg(), "seed \(seed): not deterministic")
    #expect(Self.wellFormedness(svg) == nil, "seed \(seed): \(Self.wellFormedness(svg) ?? "")")
    #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
    let (lines, markers) = Self.dataCoordinates(svg)
    #expect(lines.count == 3 && lines.allSatisfy { $0.count == 9 }, "seed \(seed)")
    #expect(markers.count == 27 && markers.allSatisfy { $0.href.hasPrefix("#marker") }, "seed \(seed)")
    let a = chart.plotArea
    for (x, y) in lines.flatMap({ $0 }) + markers.map({ ($0.x, $0.y) }) {
      #expect(x >= a.left - Self.rounding && x <= a.right + Self.rounding, "seed \(seed): x \(x) outside the plot")
      #expect(y >= a.top - Self.rounding && y <= a.bottom + Self.rounding, "seed \(seed): y \(y) outside the plot")
    }
    // The data's order survives the mapping: x grows to the right, a larger y is drawn higher.
    for (k, line) in lines.enumerated() {
      let values = chart.series[k].points
      for i in 1..<line.count {
        #expect(line[i].0 > line[i - 1].0, "seed \(seed): series \(k) point \(i)")
        if values[i].y != values[i - 1].y {
          #expect(
            (values[i].y > values[i - 1].y) == (line[i].1 < line[i - 1].1), "seed \(seed): series \(k) point \(i)")
        }
      }
    }
    #expect(!svg.contains("off the chart"))
  }

  @Test func ticksAreNiceAndCoverTheData() {
    #expect(LineChart.linearTicks(0, 0.8).map { ($0 * 10).rounded() } == [0, 2, 4, 6, 8])
    #expect(LineChart.logTicks(12, 900) == [10, 20, 50, 100, 200, 500, 1000])
    #expect(LineChart.logTicks(0.5, 3e5) == [0.1, 1, 10, 100, 1000, 10_000, 100_000, 1_000_000])
    var rng = SplitMix64(seed: 7)
    for _ in 0..<200 {
      let a = Double(rng.next() % 100_000) / 977 - 40
      let b = a + Double(rng.next() % 100_000) / 311
      let t = LineChart.linearTicks(a, b)
      let step = t[1] - t[0]
      let mantissa = step / pow(10, floor(log10(step)))
      // Bounds within 10⁻⁹ of a step of a tick count as covered (see linearTicks).
      let slack = 1e-9 * step
      #expect(t.first! <= a + slack && t.last! >= b - slack && (4...13).contains(t.count), "[\(a), \(b)] → \(t)")
      #expect([1, 2, 5, 10].contains { abs(mantissa - $0) < 1e-9 }, "[\(a), \(b)]: step \(step)")
    }
    // Labels use the decimals of the step: 0.2 steps → "0.6", not "0.6000000000000001".
    let svg = LineChart(title: "t", xLabel: "x", yLabel: "y", series: [("s", [(0, 1), (0.8, 2)])], logY: false).svg()
    #expect(svg.contains(">0.6</text>") && !svg.contains("0.6000"))
  }

  @Test func clippedValuesSitOnTheTopEdgeAndAreExplained() {
    let series: [(name: String, points: [(x: Double, y: Double)])] = [
      ("magnitude", [(0.1, 25), (0.3, 40), (0.5, 271), (0.6, 9e9), (0.7, .infinity), (0.8, .nan)]),
      ("wanda", [(0.1, 24), (0.3, 30), (0.5, 43), (0.6, 70), (0.7, 160), (.nan, 3)]),
    ]
    for logY in [false, true] {
      let chart = LineChart(title: "sweep", xLabel: "sparsity", yLabel: "perplexity", series: series, logY: logY)
      let svg = chart.svg()
      #expect(Self.wellFormedness(svg) == nil, "\(Self.wellFormedness(svg) ?? "")")
      let (lines, markers) = Self.dataCoordinates(svg)
      let clipped = markers.filter { $0.href == "#clipped" }
      #expect(clipped.count == 3, "logY \(logY)")  // 9e9 (above 10× / 1000× the median 50), ∞, NaN
      #expect(clipped.allSatisfy { abs($0.y - chart.plotArea.top) < Self.rounding }, "logY \(logY)")
      #expect(lines[1].count == 5, "a point with x = NaN is left out")
      #expect(svg.contains(">off the chart:</text>"), "logY \(logY)")
      #expect(
        svg.contains(">not finite\(logY ? ", ≤ 0" : "") or &gt; \(logY ? "41500" : "415")</text>"), "logY \(logY)")
      for (x, y) in lines.flatMap({ $0 }) {
        #expect(
          x.isFinite && y.isFinite && y >= chart.plotArea.top - Self.rounding
            && y <= chart.plotArea.bottom + Self.rounding)
      }
    }
    // An explicit ceiling clips 271 too.
    var chart = LineChart(
      title: "sweep", xLabel: "sparsity", yLabel: "perplexity", series: series, logY: false, clipAbove: 200)
    #expect(Self.dataCoordinates(chart.svg()).markers.filter { $0.href == "#clipped" }.count == 4)
    chart.clipAbove = 1e12
    #expect(Self.dataCoordinates(chart.svg()).markers.filter { $0.href == "#clipped" }.count == 2)
  }

  @Test func textIsEscaped() {
    let chart = LineChart(
      title: "Q&A <b>\"quoted\"</b> 'single'", xLabel: "x < 1", yLabel: "y & z",
      series: [("a<b&c", [(0, 1), (1, 2)]), ("naïve — ünïcödé", [(0, 2), (1, 1)])], logY: false)
    let svg = chart.svg()
    #expect(Self.wellFormedness(svg) == nil, "\(Self.wellFormedness(svg) ?? "")")
    #expect(svg.contains(">Q&amp;A &lt;b&gt;&quot;quoted&quot;&lt;/b&gt; &apos;single&apos;</text>"))
    #expect(svg.contains(">x &lt; 1</text>") && svg.contains(">y &amp; z</text>"))
    #expect(svg.contains(">a&lt;b&amp;c</text>") && svg.contains(">naïve — ünïcödé</text>"))
    #expect(!svg.contains("<b>"))
  }

  // MARK: - Bar chart

  /// The bars drawn: (series index, left, top, right, bottom) of every `<rect class="bar">`, and
  /// the value texts, in document order.
  static func bars(_ svg: String) -> (
    rects: [(series: Int, left: Double, top: Double, right: Double, bottom: Double)], values: [String]
  ) {
    var rects: [(Int, Double, Double, Double, Double)] = []
    var values: [String] = []
    for (j, group) in svg.components(separatedBy: "<g class=\"bars\"").dropFirst().enumerated() {
      for line in group.components(separatedBy: "</g>")[0].split(separator: "\n") {
        func attribute(_ name: String) -> Double? {
          guard let r = line.range(of: " \(name)=\"") else { return nil }
          return Double(line[r.upperBound...].prefix { $0 != "\"" })
        }
        if line.hasPrefix("<rect class=\"bar\""), let x = attribute("x"), let y = attribute("y"),
          let w = attribute("width"),
          let h = attribute("height")
        {
          rects.append((j, x, y, x + w, y + h))
        } else if line.hasPrefix("<text class=\"value\""), let start = line.firstIndex(of: ">"),
          let end = line.range(of: "</text>")
        {
          values.append(String(line[line.index(after: start)..<end.lowerBound]))
        }
      }
    }
    return (rects, values)
  }

  /// The y of every `<line class="reference">`.
  static func referenceLines(_ svg: String) -> [Double] {
    svg.split(separator: "\n").filter { $0.hasPrefix("<line class=\"reference\"") }.map { line in
      let r = line.range(of: " y1=\"")!
      return Double(line[r.upperBound...].prefix { $0 != "\"" })!
    }
  }

  /// Random perplexities (seeded) for `methods` × `patterns`, some missing.
  static func barChart(seed: UInt64, logY: Bool) -> BarChart {
    var rng = SplitMix64(seed: seed)
    let methods = ["magnitude", "wanda", "sparsegpt", "admm", "fista"]
    let series = ["0.5", "2:4"].map { pattern -> (name: String, values: [Double?]) in
      (pattern, methods.map { _ in rng.next() % 7 == 0 ? nil : 20 + Double(rng.next() % 10_000) / 40 })
    }
    return BarChart(
      title: "perplexity", xLabel: "method", yLabel: "perplexity", legendTitle: "sparsity", categories: methods,
      series: series,
      references: [("dense", 18.5)], logY: logY)
  }

  @Test(arguments: [(UInt64(4), false), (5, true), (6, true)])
  func barsAreDeterministicWellFormedAndOrdered(_ seed: UInt64, _ logY: Bool) throws {
    let chart = Self.barChart(seed: seed, logY: logY)
    let svg = chart.svg()
    #expect(svg == Self.barChart(seed: seed, logY: logY).svg(), "seed \(seed): not deterministic")
    #expect(Self.wellFormedness(svg) == nil, "seed \(seed): \(Self.wellFormedness(svg) ?? "")")
    let drawn = chart.series.flatMap { $0.values.compactMap { $0 } }
    let (rects, values) = Self.bars(svg)
    #expect(rects.count == drawn.count && values == drawn.map(BarChart.valueLabel), "seed \(seed)")
    let a = chart.plotArea
    for r in rects {
      #expect(r.left >= a.left && r.right <= a.right && r.left < r.right, "seed \(seed): bar outside the plot")
      #expect(r.top >= a.top - Self.rounding && r.top < r.bottom, "seed \(seed): bar above the plot or empty")
      // Every bar starts at the same baseline: the bottom of the plot (log axis; linear: 0, the
      // lowest tick, since every value is positive).
      #expect(abs(r.bottom - a.bottom) < 2 * Self.rounding, "seed \(seed): bar does not start at the baseline")
    }
    // A larger value is a taller bar; bars of one category sit side by side in series order, and
    // categories go left to right.
    for (p, q) in zip(rects, drawn).flatMap({ r in zip(rects, drawn).map { (r, $0) } }) where p.1 != q.1 {
      #expect((p.1 > q.1) == (p.0.top < q.0.top), "seed \(seed): \(p.1) vs \(q.1)")
    }
    for (i, _) in chart.categories.enumerated() {
      let e0 = chart.barExtent(category: i, series: 0)
      let e1 = chart.barExtent(category: i, series: 1)
      #expect(e0.right < e1.left, "seed \(seed): category \(i)")
      if i > 0 { #expect(chart.barExtent(category: i - 1, series: 1).right < e0.left, "seed \(seed)") }
    }
    // The reference line is drawn at its value: below every bar top (18.5 is under every value).
    let references = Self.referenceLines(svg)
    #expect(
      references.count == 1 && rects.allSatisfy { $0.top < references[0] } && references[0] < a.bottom, "seed \(seed)")
    #expect(svg.contains(">dense: 18.50</text>") && svg.contains(">sparsity:</text>"))
    #expect(svg.components(separatedBy: "(log scale)").count == (logY ? 2 : 1), "seed \(seed): log-scale label")
    #expect(!svg.contains("off the chart"))
  }

  @Test func barValuesOffTheChartReachTheTopEdgeAndAreExplained() {
    let chart = BarChart(
      title: "t", xLabel: "method", yLabel: "perplexity", categories: ["a", "b", "c", "d"],
      series: [("0.5", [30, 9e9, .nan, .infinity])], references: [("dense", 20)], logY: true)
    let svg = chart.svg()
    #expect(Self.wellFormedness(svg) == nil, "\(Self.wellFormedness(svg) ?? "")")
    let (rects, values) = Self.bars(svg)
    #expect(values == ["30.00", "9.00e+09", "NaN", "∞"])
    #expect(rects.count == 4 && rects.dropFirst().allSatisfy { abs($0.top - chart.plotArea.top) < Self.rounding })
    #expect(rects[0].top > chart.plotArea.top)
    #expect(svg.components(separatedBy: "<use xlink:href=\"#clipped\"").count - 1 == 3 + 1)  // 3 bars and the legend
    #expect(svg.contains(">not finite, ≤ 0 or &gt; 30000</text>"))  // 1000 × 30, the median of 20, 30 and 9e9
  }

  @Test func valueLabelsHaveFourSignificantDigits() {
    #expect(BarChart.valueLabel(352.319350104612) == "352.3")
    #expect(BarChart.valueLabel(23.15115874473128) == "23.15")
    #expect(BarChart.valueLabel(1234.56) == "1235")
    #expect(BarChart.valueLabel(0.5) == "0.5000")
    #expect(BarChart.valueLabel(0) == "0")
    #expect(BarChart.valueLabel(3.1e7) == "3.10e+07")
    #expect(BarChart.valueLabel(-.infinity) == "-∞")
  }

  // MARK: - The chart of a sweep

  static func entry(_ method: String, _ pattern: String, _ perplexity: Double, options: [String: String] = [:])
    -> SweepEntry
  {
    let sparsity: Double
    if method == "dense" {
      sparsity = 0
    } else if let colon = pattern.firstIndex(of: ":") {
      sparsity = Double(pattern[..<colon])! / Double(pattern[pattern.index(after: colon)...])!
    } else {
      sparsity = Double(pattern)!
    }
    return SweepEntry(
      method: method, pattern: pattern, sparsity: sparsity, options: ReportedOptionValue.typed(options, method: method),
      schedule: method == "dense" ? nil : "sequential",
      perplexity: perplexity, pruneSeconds: 1, evalSeconds: 1, realisedSparsity: sparsity, meanRelativeError: 0.01,
      peakResidentBytes: 1)
  }

  static func table(_ entries: [SweepEntry]) -> SweepTable {
    SweepTable(
      model: "/models/SmolLM2-135M-Instruct.Q4_1.gguf", evaluation: "austen-quick", calibrationSha256: "0", threads: 2,
      entries: entries)
  }

  /// The main job's table (Docs/results.md, 50%): bars, one per method, dense as the reference.
  static let quickstart = table([
    entry("dense", "dense", 23.151), entry("magnitude", "0.5", 352.32), entry("wanda", "0.5", 44.708),
    entry("sparsegpt", "0.5", 35.254), entry("admm", "0.5", 30.553),
    entry("fista", "0.5", 32.541, options: ["warm-start": "sparsegpt"]),
  ])

  @Test func oneSparsityIsDrawnAsBarsWithTheDenseModelAsReference() throws {
    guard case .bars(let chart) = Self.quickstart.chart() else {
      Issue.record("not a bar chart")
      return
    }
    #expect(chart.categories == ["magnitude", "wanda", "sparsegpt", "admm", "fista"])
    #expect(chart.series.count == 1 && chart.series[0].name == "0.5")
    #expect(chart.series[0].values == [352.32, 44.708, 35.254, 30.553, 32.541])
    #expect(chart.references.count == 1 && chart.references[0].name == "dense" && chart.references[0].value == 23.151)
    let svg = Self.quickstart.chart().svg()
    #expect(svg == Self.quickstart.chart().svg())
    #expect(Self.bars(svg).values == ["352.3", "44.71", "35.25", "30.55", "32.54"])
    // The y label says "log scale" once (it said "(log scale) (log scale)").
    #expect(svg.contains(">perplexity (log scale)</text>") && svg.components(separatedBy: "log scale").count == 2)
    #expect(svg.contains(">SmolLM2-135M-Instruct.Q4_1.gguf: perplexity on austen-quick</text>"))
    // With 2:4 beside it: a second bar per method, none where a method has no 2:4 entry.
    var both = Self.quickstart
    both.entries += [
      Self.entry("wanda", "2:4", 126.28), Self.entry("sparsegpt", "2:4", 54.118), Self.entry("admm", "2:4", 43.353),
    ]
    guard case .bars(let grouped) = both.chart() else {
      Issue.record("not a bar chart")
      return
    }
    #expect(grouped.series.map(\.name) == ["0.5", "2:4"])
    #expect(grouped.series[1].values == [nil, 126.28, 54.118, 43.353, nil])
    #expect(Self.bars(both.chart().svg()).rects.count == 8)
    // Only the dense entry so far (the chart is rewritten after every entry): the reference alone.
    let denseOnly = Self.table([Self.entry("dense", "dense", 23.151)]).chart().svg()
    #expect(
      Self.wellFormedness(denseOnly) == nil && Self.bars(denseOnly).rects.isEmpty
        && Self.referenceLines(denseOnly).count == 1)
  }

  @Test func severalSparsitiesAreDrawnAsLinesFromTheDenseModel() throws {
    let table = Self.table([
      Self.entry("dense", "dense", 23.151), Self.entry("sparsegpt", "0.5", 35.25),
      Self.entry("sparsellm", "0.5", 33.95),
      Self.entry("sparsegpt", "0.7", 101.22), Self.entry("sparsellm", "0.7", 79.50),
      Self.entry("sparsegpt", "2:4", 54.12),
    ])
    guard case .lines(let chart) = table.chart() else {
      Issue.record("not a line chart")
      return
    }
    #expect(chart.series.map(\.name) == ["sparsegpt", "sparsellm"])
    #expect(
      chart.series[0].points.map(\.x) == [0, 0.5, 0.7] && chart.series[0].points.map(\.y) == [23.151, 35.25, 101.22])
    let svg = table.chart().svg()
    #expect(Self.wellFormedness(svg) == nil)
    #expect(svg.contains(">perplexity (log scale)</text>") && svg.components(separatedBy: "log scale").count == 2)
  }

  @Test func aMethodWithSeveralOptionSetsIsOneSeriesPerSet() {
    let table = Self.table([
      Self.entry("dense", "dense", 23.151), Self.entry("fista", "0.5", 32.5, options: ["warm-start": "sparsegpt"]),
      Self.entry("fista", "0.5", 33.9), Self.entry("wanda", "0.5", 44.7),
    ])
    guard case .bars(let chart) = table.chart() else {
      Issue.record("not a bar chart")
      return
    }
    #expect(chart.categories == ["fista (warm-start=sparsegpt)", "fista (defaults)", "wanda"])
    #expect(chart.series[0].values == [32.5, 33.9, 44.7])
    // Under the bars "fista (1)" and "fista (2)"; the options are notes 1 and 2 in the legend.
    let svg = table.chart().svg()
    #expect(Self.wellFormedness(svg) == nil)
    #expect(svg.contains(">fista (1)</text>") && svg.contains(">fista (2)</text>") && svg.contains(">wanda</text>"))
    #expect(
      svg.contains(" font-size=\"10\">(1)</text>") && svg.contains(" font-size=\"10\">warm-start=sparsegpt</text>"))
    #expect(svg.contains(" font-size=\"10\">(2)</text>") && svg.contains(" font-size=\"10\">defaults</text>"))
    // In a line chart's legend, the name and then each option on a smaller line.
    let lines = LineChart(
      title: "t", xLabel: "sparsity", yLabel: "perplexity",
      series: [("fista (warm-start=sparsegpt,xi=0.3)", [(0.5, 30), (0.7, 60)])],
      logY: true
    ).svg()
    #expect(lines.contains(">fista</text>") && lines.contains(" font-size=\"10\">warm-start=sparsegpt</text>"))
    #expect(lines.contains(" font-size=\"10\">xi=0.3</text>") && !lines.contains("(warm-start"))
  }
}
