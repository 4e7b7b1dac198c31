import Foundation
import PruneSolvers
import PruneTestSupport
import Testing

/// The method-option declarations (`MethodOption.all`): every spelling follows from one name, every
/// listed method has a key path that sets exactly one property of its own options, the defaults
/// help shows are the `Options()` values, and the methods record their options under the declared
/// report keys.
@Suite("Method options: one declaration each")
struct MethodOptionsTests {
  /// The `MethodOptions` properties a method's options may live in: its own, and for SparseLLM
  /// also those of its inner methods (SparseGPT, FISTA).
  static let containers: [PruningMethod: Set<String>] = [
    .sparsegpt: ["sparseGPT"], .apt: ["apt"], .admm: ["admm"], .refit: ["refit"], .fista: ["fista"],
    .exact: ["exact"], .sparsellm: ["sparseLLM", "sparseGPT", "fista"], .alps: ["alps"],
  ]

  /// "\MethodOptions.sparseGPT.blockSize" → ["sparseGPT", "blockSize"].
  static func components(_ route: MethodOption.Route) -> [String] {
    let text = "\(route.keyPath)"
    return Array(text.split(separator: ".").dropFirst().map(String.init))
  }

  /// A value the route accepts that differs from its default (the text given to `set`).
  static func otherValue(_ route: MethodOption.Route) -> String {
    let current = MethodOptions()[keyPath: route.keyPath]
    switch route.kind {
    case .integer(let range):
      let d = current as! Int
      return "\(range.contains(d + 1) ? d + 1 : d - 1)"
    case .real(let range):
      guard let d = current as? Double else { return "1" }  // an optional, nil by default
      let candidate = [2 * d, d + 1, 1].first { range.contains($0) && $0 != d }!
      return "\(candidate)"
    case .choice(let values):
      return values.first { $0 != route.defaultText }!
    case .bool:
      return "\(!(current as! Bool))"
    }
  }

  @Test("the command-line name and the report key follow from the Swift name; no spelling is taken twice")
  func spellings() {
    var taken: [String: String] = [:]
    for option in MethodOption.all {
      let words = option.cliName.split(separator: "-").map(String.init)
      #expect(words.allSatisfy { !$0.isEmpty && $0 == $0.lowercased() }, "\(option.name): \(option.cliName)")
      #expect(option.reportKey == words.joined(separator: "_"), "\(option.name)")
      let camel = words[0] + words.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
      #expect(camel == option.name, "\(option.cliName) is not the kebab-case of \(option.name)")
      for spelling in [option.cliName] + option.aliases {
        #expect(taken[spelling] == nil, "--\(spelling) names both \(taken[spelling] ?? "") and \(option.name)")
        taken[spelling] = option.name
        #expect(MethodOption.named(spelling)?.name == option.name)
      }
    }
    #expect(MethodOption.named("block-size")?.name == "blockSize" && MethodOption.named("percdamp")?.name == "damping")
  }

  @Test("every listed method has one key path, into its own options, to the property of the option's name")
  func keyPaths() {
    for option in MethodOption.all {
      #expect(!option.routes.isEmpty && !option.summary.isEmpty, "\(option.name)")
      #expect(Set(option.methods).count == option.methods.count, "\(option.name) lists a method twice")
      for route in option.routes {
        let path = Self.components(route)
        #expect(path.count == 2, "\(option.name) for \(route.method): \(route.keyPath)")
        // The preset is a computed property: setting it sets the others.
        let computedPreset = option.name == MethodOption.preset.name && path.last?.hasPrefix("<computed") == true
        #expect(path.last == option.name || computedPreset, "\(option.name) for \(route.method) sets \(route.keyPath)")
        #expect(
          Self.containers[route.method]?.contains(path.first ?? "") == true,
          "\(option.name) for \(route.method) sets \(route.keyPath)")
      }
    }
    // Magnitude and Wanda have no options.
    #expect(MethodOption.all.allSatisfy { !$0.methods.contains(.magnitude) && !$0.methods.contains(.wanda) })
  }

  @Test("setting an option for a method changes exactly the property its key path names, under every spelling")
  func routesSetExactlyTheirProperty() throws {
    let defaults = MethodOptions()
    for option in MethodOption.all {
      for route in option.routes {
        let value = Self.otherValue(route)
        var set = MethodOptions()
        try set.set(option, value, for: route.method)
        #expect(set != defaults, "\(option.name)=\(value) for \(route.method) changed nothing")
        var restored = set
        route.copy(defaults, &restored)
        #expect(restored == defaults, "\(option.name)=\(value) for \(route.method) changed more than \(route.keyPath)")
        for spelling in [option.cliName] + option.aliases {
          var bySpelling = MethodOptions()
          try bySpelling.set(spelling, value, for: route.method)
          #expect(bySpelling == set, "--\(spelling) for \(route.method)")
        }
      }
    }
  }

  @Test("a value outside the accepted ones is refused, and so is an option for a method it does not apply to")
  func refusals() {
    for option in MethodOption.all {
      for route in option.routes {
        var bad = ["", "nonsense"]
        switch route.kind {
        case .integer(let range):
          if range.upperBound < .max { bad.append("\(range.upperBound + 1)") }
          bad.append("1.5")
        case .real(let range): bad += ["nan", "inf", "\(range.lowerBound - 1)"]
        case .choice, .bool: break
        }
        for text in bad {
          var o = MethodOptions()
          #expect(throws: PruningError.self, "\(option.name)='\(text)' for \(route.method)") {
            try o.set(option, text, for: route.method)
          }
          #expect(o == MethodOptions())
        }
      }
      for method in PruningMethod.allCases where !option.methods.contains(method) {
        var o = MethodOptions()
        let applies = option.methods.map(\.rawValue).joined(separator: ", ")
        #expect(
          throws: PruningError.invalidOption(
            name: option.cliName, detail: "does not apply to \(method); it applies to \(applies)")
        ) {
          try o.set(option, "1", for: method)
        }
      }
    }
    var o = MethodOptions()
    #expect(throws: PruningError.self) { try o.set("no-such-option", "1", for: .fista) }
  }

  @Test("the defaults help shows are the Options() values")
  func defaultsInHelp() throws {
    for option in MethodOption.all {
      for route in option.routes {
        #expect(
          option.help.contains(route.defaultText),
          "\(option.name): help lacks \(route.method)'s default \(route.defaultText)")
        var o = MethodOptions()
        do {
          // A shown value: setting it changes nothing.
          try o.set(option, route.defaultText, for: route.method)
          #expect(o == MethodOptions(), "\(option.name) for \(route.method): help shows \(route.defaultText)")
        } catch {
          // A description of what nil means: the default must be nil.
          let value = Mirror(reflecting: MethodOptions()[keyPath: route.keyPath])
          #expect(
            value.displayStyle == .optional && value.children.isEmpty,
            "\(option.name) for \(route.method): '\(route.defaultText)'")
        }
      }
    }
    // Spot checks against the method files.
    #expect(MethodOption.blockSize.defaults == "\(SparseGPT.Options().blockSize)")
    #expect(MethodOption.damping.defaults == "0.01; admm: 0.1; exact: 0")
    #expect(MethodOption.initialLambda.defaults == "the s-quantile of |Wᵢⱼ|·G*ⱼⱼ")
  }

  @Test("every method records its options under their report keys")
  func reportKeys() throws {
    let (problem, _) = randomProblem(Double.self, rows: 4, columns: 8, seed: 60)
    for method in PruningMethod.allCases where method != .sparsellm {
      var options = MethodOptions()
      // A preset first, as the command line sets it: it replaces the options set before it.
      let presetFirst = MethodOption.all.filter { $0.name == MethodOption.preset.name }
        + MethodOption.all.filter { $0.name != MethodOption.preset.name }
      for option in presetFirst {
        guard let route = option.route(for: method) else { continue }
        try options.set(option, Self.otherValue(route), for: method)
      }
      let r = try prune(problem, method: method, pattern: .unstructured(0.5), options: options)
      let declared = Set(MethodOption.all.filter { $0.methods.contains(method) }.map(\.reportKey))
      let extra: Set<String> = method == .admm ? ["fixed_mask"] : []  // not an option: whether a mask was given
      #expect(Set(r.report.options.keys) == declared.union(extra), "\(method): \(r.report.options.keys.sorted())")
    }
    // SparseLLM on an FFN records its own options; on one layer, its inner method's.
    let (ffn, x) = SparseLLMTests.ffn("swiglu", seed: 61)
    var options = SparseLLM.Options()
    options.epochs = 2
    let result = try SparseLLM(options: options).prune(
      ffn, input: x, pattern: .unstructured(ratio: 0.5, group: .matrix))
    let sparseLLMKeys = Set(
      MethodOption.all.filter { $0.route(for: .sparsellm).map(Self.components)?.first == "sparseLLM" }.map(\.reportKey))
    #expect(Set(result.up.report.options.keys) == sparseLLMKeys)
    let single = try prune(problem, method: .sparsellm, pattern: .unstructured(0.5))
    #expect(Set(single.report.options.keys) == ["block_size", "damping", "count_rule"])
  }

  /// The rows of the first Markdown table after `heading` in `file` (Docs/methods/), as cells with
  /// backticks kept and `\|` read as `|`.
  static func table(_ file: String, after heading: String) throws -> [[String]] {
    let url = ModelFiles.packageRoot.appendingPathComponent("Docs/methods").appendingPathComponent(file)
    let text = try String(contentsOf: url, encoding: .utf8)
    guard let start = text.range(of: heading) else { return [] }
    var rows: [[String]] = []
    for line in text[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false).dropFirst() {
      if line.hasPrefix("## ") { break }
      guard line.hasPrefix("| `") else {
        if !rows.isEmpty && !line.hasPrefix("|") { break }
        continue
      }
      let cells = line.replacingOccurrences(of: "\\|", with: "\u{1}").split(separator: "|").map {
        $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "\u{1}", with: "|")
      }
      rows.append(cells)
    }
    return rows
  }

  /// "`damping`, `block-size`" → ["damping", "block-size"].
  static func names(_ cell: String) -> [String] {
    cell.split(separator: ",").map {
      $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "`"))
    }
  }

  @Test("Docs/methods lists every option with its methods, and each method's page its field and default")
  func docsFollowTheDeclarations() throws {
    let index = try Self.table("README.md", after: "| option | methods | meaning |")
    #expect(index.map { $0[0] } == MethodOption.all.map { "`\($0.cliName)`" }, "Docs/methods/README.md's option table")
    for row in index {
      guard let option = MethodOption.named(Self.names(row[0])[0]) else { continue }
      #expect(
        row[1] == option.methods.map(\.rawValue).joined(separator: ", "), "README.md: methods of \(option.cliName)")
    }
    for method in PruningMethod.allCases where method != .magnitude && method != .wanda {
      let rows = try Self.table("\(method).md", after: "## Options and defaults")
      #expect(!rows.isEmpty, "\(method).md has no options table")
      var listed: Set<String> = []
      for row in rows {
        let cliNames = Self.names(row[0])
        for name in cliNames {
          #expect(
            MethodOption.named(name)?.route(for: method) != nil,
            "\(method).md lists `\(name)`, which does not apply to \(method)")
          listed.insert(name)
        }
        guard cliNames.count == 1, let option = MethodOption.named(cliNames[0]), let route = option.route(for: method)
        else { continue }
        #expect(row[1] == "`\(option.name)`", "\(method).md: field of \(option.cliName)")
        let shown = row[2].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
        #expect(
          shown == route.defaultText,
          "\(method).md: default of \(option.cliName) is \(route.defaultText), the page says \(shown)")
      }
      for option in MethodOption.all where option.route(for: method) != nil {
        #expect(listed.contains(option.cliName), "\(method).md does not list \(option.cliName)")
      }
    }
  }
}
