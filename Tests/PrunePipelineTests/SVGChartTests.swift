import Foundation
import PrunePipeline
import PruneTestSupport
import Testing

/// `LineChart.svg()`: deterministic, well-formed XML, data inside the plot area in the right
/// order, clipping of values that cannot be drawn, escaping of text.
@Suite("SVG line chart")
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
              if body[j] == "<" || (body[j] == "&" && !entityOK(i + 1 + j)) { return "bad character in \(attribute) of <\(name)>" }
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
  static func dataCoordinates(_ svg: String) -> (lines: [[(Double, Double)]], markers: [(href: String, x: Double, y: Double)]) {
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
          lines.append(points.split(separator: " ").map { p in
            let xy = p.split(separator: ",").map { Double($0)! }
            return (xy[0], xy[1])
          })
        } else if line.hasPrefix("<use"), let href = attribute("xlink:href"), let x = attribute("x"), let y = attribute("y") {
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
          #expect((values[i].y > values[i - 1].y) == (line[i].1 < line[i - 1].1), "seed \(seed): series \(k) point \(i)")
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
      let a = Double(rng.next() % 100_000) / 977 - 40, b = a + Double(rng.next() % 100_000) / 311
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
      #expect(svg.contains(">not finite\(logY ? ", ≤ 0" : "") or &gt; \(logY ? "41500" : "415")</text>"), "logY \(logY)")
      for (x, y) in lines.flatMap({ $0 }) {
        #expect(x.isFinite && y.isFinite && y >= chart.plotArea.top - Self.rounding && y <= chart.plotArea.bottom + Self.rounding)
      }
    }
    // An explicit ceiling clips 271 too.
    var chart = LineChart(title: "sweep", xLabel: "sparsity", yLabel: "perplexity", series: series, logY: false, clipAbove: 200)
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
}
