import Foundation

// Finds the documents and sections the repository's files cite, and checks them.
//
// A citation is one of:
//   - a root-relative path `Docs/<file>` or `Docs/<file>.md#<anchor>` anywhere in a source, test,
//     script or Markdown file: the canonical form of a citation in code comments;
//   - a Markdown link `[text](target)` or `[text](target#anchor)` in a Markdown file, the target
//     relative to that file (GitHub's rule), or `#anchor` alone for a section of the same file.
// An anchor must be the GitHub anchor of one of the file's `#` headings: lowercased, every
// character that is not a letter, a digit, `-`, `_` or a space dropped, spaces turned into `-`, and
// `-1`, `-2`, … appended to repeated headings.

/// One cited document or section, and where it is cited.
struct DocumentCitation: Equatable, Sendable, CustomStringConvertible {
  /// The citing file, relative to the package root.
  var file: String
  /// 1-based line of the citation.
  var line: Int
  /// The cited path, relative to the package root after resolution (no anchor).
  var target: String
  /// The cited section's anchor, if any.
  var anchor: String?

  var description: String { "\(file):\(line): \(target)\(anchor.map { "#" + $0 } ?? "")" }
}

/// A citation form that is not allowed, with the reason.
struct CitationProblem: Equatable, Sendable, CustomStringConvertible {
  var file: String
  var line: Int
  var message: String

  var description: String { "\(file):\(line): \(message)" }
}

enum DocumentReferences {
  // MARK: - GitHub anchors

  /// The GitHub anchor of a heading's text: the text as rendered (code spans, emphasis and link
  /// syntax removed), lowercased, every character other than letters, marks, decimal digits,
  /// letter-numbers, `-`, `_` and spaces removed, and each space replaced by `-`.
  static func slug(_ heading: String) -> String {
    var text = heading
    // [text](url) renders as text.
    while let open = text.range(of: "]("), let close = text[open.upperBound...].firstIndex(of: ")"),
      let start = text[..<open.lowerBound].lastIndex(of: "[")
    {
      let label = text[text.index(after: start)..<open.lowerBound]
      text.replaceSubrange(start...close, with: label)
    }
    text = text.replacingOccurrences(of: "`", with: "").replacingOccurrences(of: "*", with: "")
    var out = String.UnicodeScalarView()
    for scalar in text.lowercased().unicodeScalars {
      switch scalar.properties.generalCategory {
      case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
        .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .letterNumber:
        out.append(scalar)
      default:
        if scalar == "-" || scalar == "_" { out.append(scalar) } else if scalar == " " { out.append("-") }
      }
    }
    return String(out)
  }

  /// The anchors of every ATX heading (`#` … `######`) of a Markdown text, outside fenced code
  /// blocks, with GitHub's `-1`, `-2` suffixes for repeated ones.
  static func anchors(ofMarkdown text: String) -> Set<String> {
    var seen: [String: Int] = [:]
    var result: Set<String> = []
    var fence: String? = nil
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
      let trimmed = line.drop(while: { $0 == " " })
      if line.count - trimmed.count <= 3, let marker = fenceMarker(trimmed) {
        if fence == nil { fence = marker } else if trimmed.hasPrefix(fence!) { fence = nil }
        continue
      }
      guard fence == nil, line.count - trimmed.count <= 3, trimmed.hasPrefix("#") else { continue }
      let hashes = trimmed.prefix(while: { $0 == "#" })
      guard hashes.count <= 6 else { continue }
      let rest = trimmed.dropFirst(hashes.count)
      guard rest.isEmpty || rest.first == " " || rest.first == "\t" else { continue }
      var title = rest.trimmingCharacters(in: .whitespaces)
      // An optional closing sequence of #s, preceded by a space.
      if let last = title.lastIndex(where: { $0 != "#" }), last < title.index(before: title.endIndex),
        title[last] == " "
      {
        title = String(title[..<last]).trimmingCharacters(in: .whitespaces)
      }
      let base = slug(title)
      let n = seen[base, default: 0]
      seen[base] = n + 1
      result.insert(n == 0 ? base : "\(base)-\(n)")
    }
    return result
  }

  private static func fenceMarker(_ line: Substring) -> String? {
    if line.hasPrefix("```") { return String(line.prefix(while: { $0 == "`" })) }
    if line.hasPrefix("~~~") { return String(line.prefix(while: { $0 == "~" })) }
    return nil
  }

  // MARK: - Finding citations

  // The scan works on UTF-8 bytes (1.5 MB of text in well under a second); only the pieces that
  // are citations are decoded.

  /// Bytes of a path (ASCII only; paths in this repository are ASCII).
  private static func isPathByte(_ b: UInt8) -> Bool {
    switch b {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
      UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."),
      UInt8(ascii: "/"):
      return true
    default: return false
    }
  }

  /// Characters of an anchor: what `slug` keeps.
  private static func isAnchorCharacter(_ c: Unicode.Scalar) -> Bool {
    if c == "-" || c == "_" { return true }
    switch c.properties.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
      .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .letterNumber:
      return true
    default: return false
    }
  }

  private static func string(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }

  private static func starts(_ bytes: [UInt8], at i: Int, with needle: [UInt8]) -> Bool {
    guard i >= 0, i + needle.count <= bytes.count else { return false }
    for k in 0..<needle.count where bytes[i + k] != needle[k] { return false }
    return true
  }

  /// The anchor that starts at `i` (just after a `#`), and the index after it.
  private static func anchor(in bytes: [UInt8], from i: Int, to end: Int) -> (String, Int) {
    var j = i
    while j < end,
      isPathByte(bytes[j]) && bytes[j] != UInt8(ascii: ".") && bytes[j] != UInt8(ascii: "/")
        || bytes[j] >= 0x80
    {
      j += 1
    }
    // Non-ASCII bytes were taken whole; keep the scalars an anchor can hold.
    var kept = String.UnicodeScalarView()
    var length = 0
    for scalar in string(bytes[i..<j]).unicodeScalars {
      guard isAnchorCharacter(scalar) else { break }
      kept.append(scalar)
      length += String(scalar).utf8.count
    }
    return (String(kept), i + length)
  }

  private static let docsPrefix = Array("Docs/".utf8)
  private static let linkOpen = Array("](".utf8)
  private static let titleForm = Array(", \"".utf8)

  /// The citations and forbidden forms in one file's text. `file` is the file's path relative to
  /// the package root (it decides how Markdown links resolve and whether links are read at all).
  /// `outsideNames` are the names of documents that are not in the repository: citing one is a
  /// problem unless the name is part of a path that resolves to a repository file (`exists`).
  static func scan(
    _ text: String, file: String, outsideNames: [String], exists: (String) -> Bool
  ) -> (citations: [DocumentCitation], problems: [CitationProblem]) {
    var citations: [DocumentCitation] = []
    var problems: [CitationProblem] = []
    let isMarkdown = file.hasSuffix(".md")
    let directory = (file as NSString).deletingLastPathComponent
    let bytes = Array(text.utf8)
    let names = outsideNames.map { Array($0.utf8) }.filter { name in
      (0..<max(0, bytes.count - name.count + 1)).contains { bytes[$0] == name[0] && starts(bytes, at: $0, with: name) }
    }
    var fence: [UInt8]? = nil
    var lineStart = 0
    var lineNumber = 0
    while lineStart <= bytes.count {
      let lineEnd = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
      lineNumber += 1
      defer { lineStart = lineEnd + 1 }

      if isMarkdown {
        var f = lineStart
        while f < lineEnd, f - lineStart < 3, bytes[f] == UInt8(ascii: " ") { f += 1 }
        for tick in [UInt8(ascii: "`"), UInt8(ascii: "~")] where starts(bytes, at: f, with: [tick, tick, tick]) {
          var g = f
          while g < lineEnd, bytes[g] == tick { g += 1 }
          let marker = Array(bytes[f..<g])
          if fence == nil { fence = marker } else if starts(bytes, at: f, with: fence!) { fence = nil }
        }
      }

      var i = lineStart
      while i < lineEnd {
        // Root-relative `Docs/…` paths, in every kind of file (code blocks included: commands cite
        // files too).
        if bytes[i] == UInt8(ascii: "D"), starts(bytes, at: i, with: docsPrefix),
          i == lineStart || !isPathByte(bytes[i - 1])
        {
          var j = i
          while j < lineEnd, isPathByte(bytes[j]) { j += 1 }
          var pathEnd = j
          while pathEnd > i, bytes[pathEnd - 1] == UInt8(ascii: ".") || bytes[pathEnd - 1] == UInt8(ascii: "/") {
            pathEnd -= 1
          }
          let path = string(bytes[i..<pathEnd])
          var anchor: String? = nil
          var end = j
          if pathEnd == j, j < lineEnd, bytes[j] == UInt8(ascii: "#") {
            let (a, k) = Self.anchor(in: bytes, from: j + 1, to: lineEnd)
            if !a.isEmpty { anchor = a }
            end = k
          }
          citations.append(DocumentCitation(file: file, line: lineNumber, target: path, anchor: anchor))
          // The quoted-title form `Docs/x.md, "Title"` is not the canonical one.
          if anchor == nil, path.hasSuffix(".md"), starts(bytes, at: end, with: titleForm) {
            problems.append(
              CitationProblem(
                file: file, line: lineNumber,
                message: "cites a section of \(path) by its title; write \(path)#<anchor> instead"))
          }
          i = max(end, i + 1)
          continue
        }
        // Markdown links, outside code blocks.
        if isMarkdown, fence == nil, bytes[i] == UInt8(ascii: "]"), starts(bytes, at: i, with: linkOpen) {
          var j = i + 2
          while j < lineEnd, bytes[j] != UInt8(ascii: ")"), bytes[j] != UInt8(ascii: " ") { j += 1 }
          let target = string(bytes[(i + 2)..<j])
          i = j
          if target.isEmpty || target.contains("://") || target.hasPrefix("mailto:") { continue }
          let parts = target.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
          let pathPart = String(parts[0])
          let anchorPart = parts.count > 1 && !parts[1].isEmpty ? String(parts[1]) : nil
          let resolved =
            pathPart.isEmpty ? file : normalise(directory.isEmpty ? pathPart : directory + "/" + pathPart)
          citations.append(DocumentCitation(file: file, line: lineNumber, target: resolved, anchor: anchorPart))
          continue
        }
        i += 1
      }

      // Documents that live outside the repository.
      for name in names {
        var k = lineStart
        while k + name.count <= lineEnd {
          guard starts(bytes, at: k, with: name) else {
            k += 1
            continue
          }
          var lo = k
          while lo > lineStart, isPathByte(bytes[lo - 1]) { lo -= 1 }
          var hi = k + name.count
          while hi < lineEnd, isPathByte(bytes[hi]) { hi += 1 }
          while hi > k + name.count, bytes[hi - 1] == UInt8(ascii: ".") { hi -= 1 }
          let token = string(bytes[lo..<hi])
          let fromFile = normalise(directory.isEmpty ? token : directory + "/" + token)
          if !(token.contains("/") || token == string(name[...])) || !(exists(token) || exists(fromFile)) {
            problems.append(
              CitationProblem(
                file: file, line: lineNumber,
                message: "cites \(token), a document outside the repository; cite a page of Docs/ "
                  + "(or the outside document by URL)"))
          }
          k = hi
        }
      }
    }
    return (citations, problems)
  }

  /// `a/b/../c/./d` → `a/c/d`.
  static func normalise(_ path: String) -> String {
    var parts: [Substring] = []
    for p in path.split(separator: "/", omittingEmptySubsequences: true) {
      if p == "." { continue }
      if p == "..", let last = parts.last, last != ".." {
        parts.removeLast()
      } else {
        parts.append(p)
      }
    }
    return parts.joined(separator: "/")
  }

  // MARK: - The repository's files

  /// The files that may cite documents: sources, tests, benchmarks, scripts, CI, Markdown
  /// (paths relative to `root`, sorted). Fixtures contribute only their Markdown; `skip` lists
  /// folders left out (relative paths).
  static func citingFiles(root: URL, skip: Set<String>) -> [String] {
    let fm = FileManager.default
    var result: [String] = []
    func walk(_ relative: String, markdownOnly: Bool) {
      let url = root.appendingPathComponent(relative)
      guard let names = try? fm.contentsOfDirectory(atPath: url.path) else { return }
      for name in names {
        let path = relative + "/" + name
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: root.appendingPathComponent(path).path, isDirectory: &isDirectory) else {
          continue
        }
        if isDirectory.boolValue {
          if !skip.contains(path), !name.hasPrefix(".") { walk(path, markdownOnly: markdownOnly) }
          continue
        }
        let ext = (name as NSString).pathExtension
        if markdownOnly ? ext == "md" : (["swift", "md", "sh", "py"].contains(ext) || relative == ".ci") {
          result.append(path)
        }
      }
    }
    for folder in ["Sources", "Tests", "Benchmarks", "Docs", "scripts", "Examples", ".ci"] {
      walk(folder, markdownOnly: false)
    }
    walk("Fixtures", markdownOnly: true)
    for file in ["README.md", "Package.swift"] where fm.fileExists(atPath: root.appendingPathComponent(file).path) {
      result.append(file)
    }
    return result.sorted()
  }
}
