// Draws the charts of `prune sweep` as standalone SVG documents, with no dependencies and
// byte-identical output for identical input:
//
//   - `LineChart`: several series of (x, y) points (perplexity against sparsity, one line per
//     method), each with its colour and marker shape, and a legend on the right.
//   - `BarChart`: one value per category and series (perplexity per method at one sparsity), the
//     value written above each bar, and reference values (the dense model) as dashed lines across.
//   - `SweepChart`: either, as `SweepTable.chart()` chooses it.
//
// Shared by both:
//   - Axes with "nice" ticks (1, 2 or 5 × 10ᵏ; decades on a logarithmic y axis) and gridlines; the
//     y label gains " (log scale)" on a log axis.
//   - 8 colours, cycling.
//   - A y value that cannot be placed — NaN, ±∞, ≤ 0 on a log axis, or above the ceiling — is
//     clipped: drawn as a hollow up-pointing triangle on the top edge of the plot (a line runs to
//     it; a bar reaches it), and the legend says what the triangle means. Without an explicit
//     `clipAbove` the ceiling is 10× (log: 1000×) the median of the finite values, so that one
//     collapsed method does not flatten every other line or bar. Points with a non-finite x are
//     left out of a line chart.
//   - Text is XML-escaped; numbers are written with a fixed number of decimals.

import Foundation

/// A line chart of several series of (x, y) points, rendered by `svg()`.
public struct LineChart: Sendable {
  /// The chart's title, drawn above the plot.
  public var title: String
  /// The label under the x axis.
  public var xLabel: String
  /// The label left of the y axis (drawn vertically).
  public var yLabel: String
  /// The lines, drawn and listed in the legend in this order. A name "name (detail)" is listed as
  /// its name with the detail on smaller lines below (split at commas).
  public var series: [(name: String, points: [(x: Double, y: Double)])]
  /// A logarithmic (base 10) y axis.
  public var logY: Bool
  /// y values above this are clipped; nil: 10× the median of the finite y values (1000× on a log
  /// axis).
  public var clipAbove: Double?
  /// The size of the picture in SVG user units (pixels).
  public var width: Double = 760
  public var height: Double = 440

  public init(
    title: String, xLabel: String, yLabel: String, series: [(name: String, points: [(x: Double, y: Double)])],
    logY: Bool = false, clipAbove: Double? = nil
  ) {
    self.title = title
    self.xLabel = xLabel
    self.yLabel = yLabel
    self.series = series
    self.logY = logY
    self.clipAbove = clipAbove
  }

  /// The rectangle the data is drawn in, in SVG coordinates (y grows downwards); the legend is to
  /// its right.
  public var plotArea: (left: Double, top: Double, right: Double, bottom: Double) {
    (64, 40, width - 190, height - 56)
  }

  static let colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
  /// Marker shapes centred on (0, 0), radius about 4.
  static let markers = [
    "<circle r=\"3.5\"/>", "<rect x=\"-3.2\" y=\"-3.2\" width=\"6.4\" height=\"6.4\"/>",
    "<path d=\"M0,-4.5L4.5,0L0,4.5L-4.5,0Z\"/>", "<path d=\"M-4,-3L4,-3L0,4Z\"/>",
    "<path d=\"M-1.3,-4.5h2.6v3.2h3.2v2.6h-3.2v3.2h-2.6v-3.2h-3.2v-2.6h3.2Z\"/>",
    "<path d=\"M-4.2,-2.4L-2.4,-4.2L0,-1.8L2.4,-4.2L4.2,-2.4L1.8,0L4.2,2.4L2.4,4.2L0,1.8L-2.4,4.2L-4.2,2.4L-1.8,0Z\"/>",
  ]

  /// The y values above which points are clipped (see `clipAbove`).
  public var ceiling: Double {
    clipAbove ?? Self.defaultCeiling(series.flatMap { $0.points.map(\.y) }, logY: logY)
  }

  /// 10× the median of the finite values (log axis: of the positive ones, and 1000×); ∞ when there
  /// are none or the median is not positive.
  static func defaultCeiling(_ values: [Double], logY: Bool) -> Double {
    let finite = values.filter { $0.isFinite && (!logY || $0 > 0) }.sorted()
    guard !finite.isEmpty else { return .infinity }
    let median =
      finite.count % 2 == 1
      ? finite[finite.count / 2] : (finite[finite.count / 2 - 1] + finite[finite.count / 2]) / 2
    let factor = logY ? 1000.0 : 10.0
    return median > 0 ? median * factor : .infinity
  }

  /// True when a y value is drawn as clipped.
  func isClipped(_ y: Double, ceiling: Double) -> Bool { !y.isFinite || (logY && y <= 0) || y > ceiling }

  /// The SVG document.
  public func svg() -> String {
    let area = plotArea
    let top = ceiling
    let points = series.map { $0.points.filter { $0.x.isFinite } }
    let xs = points.flatMap { $0.map(\.x) }
    let ys = points.flatMap { $0.map(\.y) }.filter { !isClipped($0, ceiling: top) }
    let xTicks = Self.linearTicks(xs.min() ?? 0, xs.max() ?? 1)
    let yTicks = logY ? Self.logTicks(ys.min() ?? 1, ys.max() ?? 10) : Self.linearTicks(ys.min() ?? 0, ys.max() ?? 1)
    let (x0, x1) = (xTicks.first!, xTicks.last!)
    let (y0, y1) = logY ? (log10(yTicks.first!), log10(yTicks.last!)) : (yTicks.first!, yTicks.last!)
    func px(_ x: Double) -> Double { area.left + (x - x0) / (x1 - x0) * (area.right - area.left) }
    func py(_ y: Double) -> Double {
      if isClipped(y, ceiling: top) { return area.top }
      let v = logY ? log10(y) : y
      return area.bottom - (v - y0) / (y1 - y0) * (area.bottom - area.top)
    }

    var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\""
    s +=
      " width=\"\(Self.f(width, 0))\" height=\"\(Self.f(height, 0))\" viewBox=\"0 0 \(Self.f(width, 0)) \(Self.f(height, 0))\""
    s += " font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
    s += "<defs>\n"
    for (i, m) in Self.markers.enumerated() { s += "<g id=\"marker\(i)\">\(m)</g>\n" }
    s += "<g id=\"clipped\"><path d=\"M0,-5L5,4L-5,4Z\" fill=\"white\" stroke=\"black\" stroke-width=\"1.2\"/></g>\n"
    s += "</defs>\n"
    s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    s +=
      "<text x=\"\(Self.f((area.left + area.right) / 2))\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">\(Self.escape(title))</text>\n"

    // Gridlines and tick labels.
    s += "<g stroke=\"#dddddd\" stroke-width=\"1\">\n"
    for t in xTicks {
      s +=
        "<line x1=\"\(Self.f(px(t)))\" y1=\"\(Self.f(area.top))\" x2=\"\(Self.f(px(t)))\" y2=\"\(Self.f(area.bottom))\"/>\n"
    }
    for t in yTicks {
      s +=
        "<line x1=\"\(Self.f(area.left))\" y1=\"\(Self.f(py(t)))\" x2=\"\(Self.f(area.right))\" y2=\"\(Self.f(py(t)))\"/>\n"
    }
    s += "</g>\n"
    s +=
      "<rect x=\"\(Self.f(area.left))\" y=\"\(Self.f(area.top))\" width=\"\(Self.f(area.right - area.left))\" height=\"\(Self.f(area.bottom - area.top))\" fill=\"none\" stroke=\"black\"/>\n"
    s += "<g text-anchor=\"middle\">\n"
    for t in xTicks {
      s +=
        "<text x=\"\(Self.f(px(t)))\" y=\"\(Self.f(area.bottom + 16))\">\(Self.label(t, ticks: xTicks, log: false))</text>\n"
    }
    s += "</g>\n<g text-anchor=\"end\">\n"
    for t in yTicks {
      s +=
        "<text x=\"\(Self.f(area.left - 6))\" y=\"\(Self.f(py(t) + 4))\">\(Self.label(t, ticks: yTicks, log: logY))</text>\n"
    }
    s += "</g>\n"
    s +=
      "<text x=\"\(Self.f((area.left + area.right) / 2))\" y=\"\(Self.f(height - 14))\" text-anchor=\"middle\">\(Self.escape(xLabel))</text>\n"
    let middle = Self.f((area.top + area.bottom) / 2)
    s +=
      "<text x=\"16\" y=\"\(middle)\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(middle))\">\(Self.escape(yLabel + (logY ? " (log scale)" : "")))</text>\n"

    // The series: a line, then the markers (clipped points on the top edge).
    var anyClipped = false
    for (i, line) in points.enumerated() {
      let colour = Self.colours[i % Self.colours.count]
      let coordinates = line.map { "\(Self.f(px($0.x))),\(Self.f(py($0.y)))" }.joined(separator: " ")
      s += "<g class=\"series\" fill=\"\(colour)\" stroke=\"\(colour)\">\n"
      s += "<polyline points=\"\(coordinates)\" fill=\"none\" stroke-width=\"1.6\"/>\n"
      for p in line {
        let clipped = isClipped(p.y, ceiling: top)
        anyClipped = anyClipped || clipped
        s +=
          "<use xlink:href=\"#\(clipped ? "clipped" : "marker\(i % Self.markers.count)")\" x=\"\(Self.f(px(p.x)))\" y=\"\(Self.f(py(p.y)))\"/>\n"
      }
      s += "</g>\n"
    }

    // The legend.
    let lx = area.right + 16
    var ly = area.top + 8
    s += "<g class=\"legend\">\n"
    for (i, line) in series.enumerated() {
      let colour = Self.colours[i % Self.colours.count]
      s +=
        "<line x1=\"\(Self.f(lx))\" y1=\"\(Self.f(ly))\" x2=\"\(Self.f(lx + 24))\" y2=\"\(Self.f(ly))\" stroke=\"\(colour)\" stroke-width=\"1.6\"/>\n"
      s +=
        "<use xlink:href=\"#marker\(i % Self.markers.count)\" x=\"\(Self.f(lx + 12))\" y=\"\(Self.f(ly))\" fill=\"\(colour)\" stroke=\"\(colour)\"/>\n"
      // "name (detail)": the detail on lines of its own, smaller (split at commas), so that long
      // options stay inside the picture.
      let (name, detail) = Self.nameAndDetail(line.name)
      s += "<text x=\"\(Self.f(lx + 32))\" y=\"\(Self.f(ly + 4))\">\(Self.escape(name))</text>\n"
      for part in detail.map({ $0.split(separator: ",", omittingEmptySubsequences: false) }) ?? [] {
        ly += 13
        s +=
          "<text x=\"\(Self.f(lx + 32))\" y=\"\(Self.f(ly + 4))\" font-size=\"10\">\(Self.escape(String(part)))</text>\n"
      }
      ly += 20
    }
    if anyClipped {
      let why =
        "not finite" + (logY ? ", ≤ 0" : "") + (top.isFinite ? " or > \(Self.label(top, ticks: [top], log: true))" : "")
      s += "<use xlink:href=\"#clipped\" x=\"\(Self.f(lx + 12))\" y=\"\(Self.f(ly))\"/>\n"
      s += "<text x=\"\(Self.f(lx + 32))\" y=\"\(Self.f(ly + 4))\">off the chart:</text>\n"
      s += "<text x=\"\(Self.f(lx + 32))\" y=\"\(Self.f(ly + 18))\" font-size=\"10\">\(Self.escape(why))</text>\n"
    }
    s += "</g>\n</svg>\n"
    return s
  }

  // MARK: - Ticks, numbers and text

  /// "name (detail)" split into its name and detail; a name without " (…)" at its end has none.
  static func nameAndDetail(_ text: String) -> (name: String, detail: String?) {
    guard text.hasSuffix(")"), let open = text.range(of: " (") else { return (text, nil) }
    return (String(text[..<open.lowerBound]), String(text[open.upperBound..<text.index(before: text.endIndex)]))
  }

  /// Ticks at multiples of a step of 1, 2 or 5 × 10ᵏ, from a multiple ≤ `lower` to one ≥ `upper`,
  /// about 5 to 10 of them. Equal bounds are widened by 1 (or 10 % of their size).
  public static func linearTicks(_ lower: Double, _ upper: Double) -> [Double] {
    var (a, b) = (min(lower, upper), max(lower, upper))
    if a == b {
      let pad = a == 0 ? 1 : abs(a) / 10
      (a, b) = (a - pad, b + pad)
    }
    let raw = (b - a) / 6
    let magnitude = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw }!
    // A bound within 10⁻⁹ of a step of a multiple counts as that multiple (0.8 / 0.2 may not be 4).
    let first = floor(a / step + 1e-9)
    let last = ceil(b / step - 1e-9)
    return stride(from: first, through: last, by: 1).map { $0 * step }
  }

  /// Decades 10ᵏ covering [lower, upper] (lower > 0); with fewer than 3 decades, 2·10ᵏ and 5·10ᵏ too.
  public static func logTicks(_ lower: Double, _ upper: Double) -> [Double] {
    let a = floor(log10(min(lower, upper)))
    let b = max(ceil(log10(max(lower, upper))), a + 1)
    var ticks: [Double] = []
    for k in stride(from: a, through: b, by: 1) {
      ticks.append(pow(10, k))
      if b - a < 3 && k < b { ticks += [2 * pow(10, k), 5 * pow(10, k)] }
    }
    return ticks
  }

  /// A tick label: as many decimals as the tick spacing needs; on a log axis, plain numbers from
  /// 10⁻⁴ to 10⁶ and 2e7-style beyond.
  static func label(_ v: Double, ticks: [Double], log: Bool) -> String {
    if log {
      let k = floor(log10(v) + 1e-9)
      if v >= 1e-4 && v < 1e6 { return f(v, max(0, Int(-k))) }
      return f(v / pow(10, k), 0) + "e\(Int(k))"
    }
    let step = ticks.count > 1 ? abs(ticks[1] - ticks[0]) : 1
    let decimals = max(0, Int(-floor(log10(step) + 1e-9)))
    return f(v == 0 ? 0 : v, decimals)
  }

  /// `v` with `decimals` decimals ("-0.00" is written "0.00").
  static func f(_ v: Double, _ decimals: Int = 2) -> String {
    let s = String(format: "%.\(decimals)f", v)
    return s.hasPrefix("-") && s.dropFirst().allSatisfy { $0 == "0" || $0 == "." } ? String(s.dropFirst()) : s
  }

  /// Text with &, <, >, " and ' written as entities.
  static func escape(_ text: String) -> String {
    var out = ""
    for c in text.unicodeScalars {
      switch c {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      case "'": out += "&apos;"
      default:
        // XML 1.0 has no representation for most control characters; they become spaces.
        if c.value < 0x20 && c != "\t" && c != "\n" { out += " " } else { out.unicodeScalars.append(c) }
      }
    }
    return out
  }
}

/// A bar chart: for each category one bar per series, its value written above it, and reference
/// values drawn as dashed lines across the plot; rendered by `svg()`.
///
/// On a linear axis the bars start at 0; on a logarithmic one (where 0 cannot be drawn) at the
/// lowest tick, so a bar's height there shows the ratio of its value to that tick, and the written
/// values are what to compare.
public struct BarChart: Sendable {
  /// The chart's title, drawn above the plot.
  public var title: String
  /// The label under the category names.
  public var xLabel: String
  /// The label left of the y axis (drawn vertically).
  public var yLabel: String
  /// The heading of the series in the legend ("sparsity"); empty: none.
  public var legendTitle: String
  /// The groups along the x axis, in this order. A name "name (detail)" is written "name (1)" there,
  /// the detail in the legend as note 1 (split at commas, one line each).
  public var categories: [String]
  /// One bar per category for each series (`values[i]` belongs to `categories[i]`; nil: no bar),
  /// side by side in this order, one colour each.
  public var series: [(name: String, values: [Double?])]
  /// Values drawn as dashed horizontal lines across the plot and listed in the legend with their
  /// value (one that cannot be placed is listed only).
  public var references: [(name: String, value: Double)]
  /// A logarithmic (base 10) y axis.
  public var logY: Bool
  /// y values above this are clipped; nil: 10× the median of the finite values, bars and references
  /// (1000× on a log axis).
  public var clipAbove: Double?
  /// The size of the picture in SVG user units (pixels).
  public var width: Double = 760
  public var height: Double = 440

  public init(
    title: String, xLabel: String, yLabel: String, legendTitle: String = "", categories: [String],
    series: [(name: String, values: [Double?])], references: [(name: String, value: Double)] = [], logY: Bool = false,
    clipAbove: Double? = nil
  ) {
    self.title = title
    self.xLabel = xLabel
    self.yLabel = yLabel
    self.legendTitle = legendTitle
    self.categories = categories
    self.series = series
    self.references = references
    self.logY = logY
    self.clipAbove = clipAbove
  }

  /// The rectangle the data is drawn in, in SVG coordinates (y grows downwards); the legend is to
  /// its right. Its top leaves room for the values written above the tallest bars.
  public var plotArea: (left: Double, top: Double, right: Double, bottom: Double) {
    (64, 52, width - 190, height - 62)
  }

  /// Every value a bar or reference line stands for.
  var values: [Double] { series.flatMap { $0.values.compactMap { $0 } } + references.map(\.value) }

  /// The y values above which bars are clipped (see `clipAbove`).
  public var ceiling: Double { clipAbove ?? LineChart.defaultCeiling(values, logY: logY) }

  /// True when a y value is drawn as clipped.
  func isClipped(_ y: Double, ceiling: Double) -> Bool { !y.isFinite || (logY && y <= 0) || y > ceiling }

  /// The horizontal extent of bar `j` of category `i`: groups take 70% of their slot, bars share
  /// their group equally with a 2-unit gap between neighbours.
  public func barExtent(category i: Int, series j: Int) -> (left: Double, right: Double) {
    let area = plotArea
    let slot = (area.right - area.left) / Double(max(categories.count, 1))
    let group = slot * 0.7
    let bar = group / Double(max(series.count, 1))
    let left = area.left + slot * Double(i) + (slot - group) / 2 + bar * Double(j)
    let gap = series.count > 1 ? 1.0 : 0
    return (left + gap, left + bar - gap)
  }

  /// The SVG document.
  public func svg() -> String {
    let area = plotArea
    let top = ceiling
    let placed = values.filter { !isClipped($0, ceiling: top) }
    let yTicks =
      logY
      ? LineChart.logTicks(placed.min() ?? 1, placed.max() ?? 10)
      : LineChart.linearTicks(min(placed.min() ?? 0, 0), max(placed.max() ?? 1, 0))
    let (y0, y1) = logY ? (log10(yTicks.first!), log10(yTicks.last!)) : (yTicks.first!, yTicks.last!)
    func py(_ y: Double) -> Double {
      if isClipped(y, ceiling: top) { return area.top }
      let v = logY ? log10(y) : y
      return area.bottom - (v - y0) / (y1 - y0) * (area.bottom - area.top)
    }
    // Where bars start: 0 on a linear axis (within the ticks, which include it), the lowest tick on
    // a log axis.
    let base = logY ? area.bottom : py(0)
    func f(_ v: Double, _ decimals: Int = 2) -> String { LineChart.f(v, decimals) }

    var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\""
    s += " width=\"\(f(width, 0))\" height=\"\(f(height, 0))\" viewBox=\"0 0 \(f(width, 0)) \(f(height, 0))\""
    s += " font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
    s += "<defs>\n"
    s += "<g id=\"clipped\"><path d=\"M0,-5L5,4L-5,4Z\" fill=\"white\" stroke=\"black\" stroke-width=\"1.2\"/></g>\n"
    s += "</defs>\n"
    s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    s +=
      "<text x=\"\(f((area.left + area.right) / 2))\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">\(LineChart.escape(title))</text>\n"

    // Gridlines and tick labels (y only: x is categories).
    s += "<g stroke=\"#dddddd\" stroke-width=\"1\">\n"
    for t in yTicks {
      s += "<line x1=\"\(f(area.left))\" y1=\"\(f(py(t)))\" x2=\"\(f(area.right))\" y2=\"\(f(py(t)))\"/>\n"
    }
    s += "</g>\n"
    s +=
      "<rect x=\"\(f(area.left))\" y=\"\(f(area.top))\" width=\"\(f(area.right - area.left))\" height=\"\(f(area.bottom - area.top))\" fill=\"none\" stroke=\"black\"/>\n"
    s += "<g text-anchor=\"end\">\n"
    for t in yTicks {
      s +=
        "<text x=\"\(f(area.left - 6))\" y=\"\(f(py(t) + 4))\">\(LineChart.label(t, ticks: yTicks, log: logY))</text>\n"
    }
    s += "</g>\n"
    // Category names; a parenthesised detail ("fista (warm-start=sparsegpt)") is too wide for a
    // slot, so it becomes a numbered note in the legend: "fista (1)" under the bars.
    var notes: [String] = []
    s += "<g text-anchor=\"middle\">\n"
    for (i, name) in categories.enumerated() {
      let x = f(
        (barExtent(category: i, series: 0).left + barExtent(category: i, series: max(series.count - 1, 0)).right) / 2)
      let (short, detail) = LineChart.nameAndDetail(name)
      var text = short
      if let detail {
        notes.append(detail)
        text += " (\(notes.count))"
      }
      s += "<text x=\"\(x)\" y=\"\(f(area.bottom + 16))\">\(LineChart.escape(text))</text>\n"
    }
    s += "</g>\n"
    s +=
      "<text x=\"\(f((area.left + area.right) / 2))\" y=\"\(f(height - 14))\" text-anchor=\"middle\">\(LineChart.escape(xLabel))</text>\n"
    let middle = f((area.top + area.bottom) / 2)
    s +=
      "<text x=\"16\" y=\"\(middle)\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(middle))\">\(LineChart.escape(yLabel + (logY ? " (log scale)" : "")))</text>\n"

    // The bars, each with its value above it (a clipped bar reaches the top edge and carries the
    // triangle; its value is written all the same).
    var anyClipped = false
    for (j, line) in series.enumerated() {
      let colour = LineChart.colours[j % LineChart.colours.count]
      s += "<g class=\"bars\" fill=\"\(colour)\">\n"
      for (i, value) in line.values.enumerated() where i < categories.count {
        guard let value else { continue }
        let (left, right) = barExtent(category: i, series: j)
        let clipped = isClipped(value, ceiling: top)
        anyClipped = anyClipped || clipped
        let y = py(value)
        s +=
          "<rect class=\"bar\" x=\"\(f(left))\" y=\"\(f(min(y, base)))\" width=\"\(f(right - left))\" height=\"\(f(abs(base - y)))\"/>\n"
        if clipped { s += "<use xlink:href=\"#clipped\" x=\"\(f((left + right) / 2))\" y=\"\(f(area.top))\"/>\n" }
        let labelY = clipped ? area.top - 8 : (y <= base ? y - 4 : y + 13)
        let size = right - left >= 34 ? "11" : "9"
        s +=
          "<text class=\"value\" x=\"\(f((left + right) / 2))\" y=\"\(f(labelY))\" text-anchor=\"middle\" font-size=\"\(size)\" fill=\"black\">\(Self.valueLabel(value))</text>\n"
      }
      s += "</g>\n"
    }

    // Reference lines, over the bars.
    let dash = "stroke=\"#333333\" stroke-width=\"1.4\" stroke-dasharray=\"6 4\""
    for r in references where !isClipped(r.value, ceiling: top) {
      s +=
        "<line class=\"reference\" x1=\"\(f(area.left))\" y1=\"\(f(py(r.value)))\" x2=\"\(f(area.right))\" y2=\"\(f(py(r.value)))\" \(dash)/>\n"
    }

    // The legend: the series, then the references with their values, the notes, the clipping note.
    let lx = area.right + 16
    var ly = area.top + 8
    s += "<g class=\"legend\">\n"
    if !legendTitle.isEmpty && !series.isEmpty {
      s += "<text x=\"\(f(lx))\" y=\"\(f(ly + 4))\">\(LineChart.escape(legendTitle)):</text>\n"
      ly += 20
    }
    for (j, line) in series.enumerated() {
      let colour = LineChart.colours[j % LineChart.colours.count]
      s += "<rect x=\"\(f(lx + 6))\" y=\"\(f(ly - 6))\" width=\"12\" height=\"12\" fill=\"\(colour)\"/>\n"
      s += "<text x=\"\(f(lx + 32))\" y=\"\(f(ly + 4))\">\(LineChart.escape(line.name))</text>\n"
      ly += 20
    }
    for r in references {
      s += "<line x1=\"\(f(lx))\" y1=\"\(f(ly))\" x2=\"\(f(lx + 24))\" y2=\"\(f(ly))\" \(dash)/>\n"
      s +=
        "<text x=\"\(f(lx + 32))\" y=\"\(f(ly + 4))\">\(LineChart.escape(r.name)): \(Self.valueLabel(r.value))</text>\n"
      ly += 20
    }
    for (k, note) in notes.enumerated() {
      s += "<text x=\"\(f(lx + 6))\" y=\"\(f(ly + 4))\" font-size=\"10\">(\(k + 1))</text>\n"
      for part in note.split(separator: ",", omittingEmptySubsequences: false) {
        s += "<text x=\"\(f(lx + 32))\" y=\"\(f(ly + 4))\" font-size=\"10\">\(LineChart.escape(String(part)))</text>\n"
        ly += 13
      }
      ly += 5
    }
    if anyClipped {
      let why =
        "not finite" + (logY ? ", ≤ 0" : "")
        + (top.isFinite ? " or > \(LineChart.label(top, ticks: [top], log: true))" : "")
      s += "<use xlink:href=\"#clipped\" x=\"\(f(lx + 12))\" y=\"\(f(ly))\"/>\n"
      s += "<text x=\"\(f(lx + 32))\" y=\"\(f(ly + 4))\">off the chart:</text>\n"
      s += "<text x=\"\(f(lx + 32))\" y=\"\(f(ly + 18))\" font-size=\"10\">\(LineChart.escape(why))</text>\n"
    }
    s += "</g>\n</svg>\n"
    return s
  }

  /// A value written on the chart: 4 significant digits from 0.001 to 10⁶ ("352.3", "23.15"),
  /// "3.14e+07"-style outside, "NaN", "∞", "-∞".
  static func valueLabel(_ v: Double) -> String {
    if v.isNaN { return "NaN" }
    if v.isInfinite { return v > 0 ? "∞" : "-∞" }
    let a = abs(v)
    if a != 0 && (a >= 1e6 || a < 1e-3) { return String(format: "%.2e", v) }
    return LineChart.f(v, a == 0 ? 0 : max(0, 3 - Int(floor(log10(a)))))
  }
}

/// The chart of a sweep (`SweepTable.chart()`): lines when the table has several sparsities, bars
/// when it has one.
public enum SweepChart: Sendable {
  case lines(LineChart)
  case bars(BarChart)

  /// The SVG document.
  public func svg() -> String {
    switch self {
    case .lines(let chart): chart.svg()
    case .bars(let chart): chart.svg()
    }
  }
}
