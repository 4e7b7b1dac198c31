import Foundation
import PruneTestSupport
import Testing

/// Every document and section the repository cites exists in the repository: a reader who follows
/// a citation in a comment, a script or a page finds the file and the heading it names. Citations
/// in code use one form, `Docs/<page>.md#<anchor>` (root-relative, GitHub's anchor of the heading);
/// pages link with relative Markdown links. Documents outside the repository are cited by URL, never
/// by a bare file name. Reads the checkout's text files only: no model, well under a second.
@Suite("Documentation references")
struct DocumentationTests {
  static let root = ModelFiles.packageRoot

  /// This suite's own folder is not scanned: its tests feed the scanner deliberately broken
  /// citations.
  static let ownFolder = "Tests/DocumentationTests"

  /// Documents the team keeps outside the repository. A citation of one of them is dead for every
  /// other reader. (Spelled in parts so that this file does not itself match a search for them.)
  static let outsideNames: [String] =
    ["algorithms", "findings", "protocols", "model-and-data", "users"].map { $0 + ".md" }
    + [["style", "anchors"], ["published", "results"], ["kernels", "feasibility"], ["landscape", "2026"]]
    .map { $0.joined(separator: "-") }

  /// Pages that a citation announces before the page itself lands, each with the work that writes
  /// it. A missing pending page is accepted; once it exists its citations are checked like any
  /// other. Keep this list empty whenever possible.
  static let pendingDocuments: [String: String] = [:]

  static func exists(_ relative: String) -> Bool {
    !relative.isEmpty && FileManager.default.fileExists(atPath: root.appendingPathComponent(relative).path)
  }

  struct Scan: Sendable {
    var files: [String]
    var citations: [DocumentCitation]
    var problems: [CitationProblem]
  }

  static let scan: Scan = {
    let files = DocumentReferences.citingFiles(root: root, skip: [ownFolder])
    var citations: [DocumentCitation] = []
    var problems: [CitationProblem] = []
    for file in files {
      guard let text = try? String(contentsOf: root.appendingPathComponent(file), encoding: .utf8) else {
        problems.append(CitationProblem(file: file, line: 0, message: "not readable as UTF-8"))
        continue
      }
      let r = DocumentReferences.scan(text, file: file, outsideNames: outsideNames, exists: exists)
      citations += r.citations
      problems += r.problems
    }
    return Scan(files: files, citations: citations, problems: problems)
  }()

  /// Checks citations against the files under `root`: the file exists, and a cited anchor is one
  /// of its headings. Returns one message per broken citation.
  static func brokenCitations(
    _ citations: [DocumentCitation], exists: (String) -> Bool, markdown: (String) -> String?
  ) -> [String] {
    var anchorsByFile: [String: Set<String>] = [:]
    var broken: [String] = []
    for c in citations {
      guard exists(c.target) else {
        if pendingDocuments[c.target] == nil {
          broken.append("\(c.file):\(c.line): cites \(c.target), which is not in the repository")
        }
        continue
      }
      guard let anchor = c.anchor else { continue }
      guard c.target.hasSuffix(".md"), let text = markdown(c.target) else {
        broken.append("\(c.file):\(c.line): cites #\(anchor) of \(c.target), which is not a Markdown page")
        continue
      }
      let anchors = anchorsByFile[c.target] ?? DocumentReferences.anchors(ofMarkdown: text)
      anchorsByFile[c.target] = anchors
      if !anchors.contains(anchor) {
        let near = anchors.sorted().filter { $0.hasPrefix(String(anchor.prefix(4))) }.prefix(5)
        broken.append(
          "\(c.file):\(c.line): cites \(c.target)#\(anchor), but \(c.target) has no such heading"
            + (near.isEmpty ? "" : " (similar: \(near.joined(separator: ", ")))"))
      }
    }
    return broken
  }

  static func markdown(_ relative: String) -> String? {
    try? String(contentsOf: root.appendingPathComponent(relative), encoding: .utf8)
  }

  @Test("every cited document and section exists")
  func citedDocumentsExist() {
    let scan = Self.scan
    // A scan that finds nothing (a wrong root, a renamed folder) must not pass quietly: the
    // repository has well over a hundred text files and over a hundred citations.
    #expect(scan.files.count > 100, "only \(scan.files.count) files scanned under \(Self.root.path)")
    #expect(scan.citations.count > 100, "only \(scan.citations.count) citations found")
    for message in Self.brokenCitations(scan.citations, exists: Self.exists, markdown: Self.markdown) {
      Issue.record(Comment(rawValue: message))
    }
  }

  @Test("citations use the canonical form and no document outside the repository is cited")
  func citationForms() {
    for problem in Self.scan.problems {
      Issue.record(Comment(rawValue: problem.description))
    }
  }

  @Test(
    "anchors are GitHub's",
    arguments: [
      ("The authors' code, and where PruneKit differs", "the-authors-code-and-where-prunekit-differs"),
      ("Reconstructed [INF], and open questions", "reconstructed-inf-and-open-questions"),
      ("AVX2 or AVX-512, chosen at run time", "avx2-or-avx-512-chosen-at-run-time"),
      ("`prune verify`", "prune-verify"),
      (
        "Checking another backend: `prune verify` and `prune vectors`",
        "checking-another-backend-prune-verify-and-prune-vectors"
      ),
      ("GEMM: C ← α·op(A)·op(B) + β·C", "gemm-c--αopaopb--βc"),
      ("Faults: kill, resume, full disk, unwritable output", "faults-kill-resume-full-disk-unwritable-output"),
      ("Kills: `Tests/fault-kill.sh`", "kills-testsfault-killsh"),
      ("A certified upper bound on λmax", "a-certified-upper-bound-on-λmax"),
      ("Steps (all in Double)", "steps-all-in-double"),
      ("See [the oracle](oracle.md)", "see-the-oracle"),
    ])
  func slugs(heading: String, anchor: String) {
    #expect(DocumentReferences.slug(heading) == anchor)
  }

  @Test func headingsRepeatedCodeAndFences() {
    let page = """
      # Title
      ## Tests
      ```
      # not a heading
      ## Tests
      ```
      ### Tests ###
      #not-a-heading
          # indented code, not a heading
      ####### seven hashes, not a heading
      """
    #expect(DocumentReferences.anchors(ofMarkdown: page) == ["title", "tests", "tests-1"])
  }

  /// The checks can fail: a file that cites a missing page, a missing section, a section by its
  /// title and an outside document is reported on every count, while its valid citations are not.
  @Test func brokenCitationsAreReported() {
    let docs = "Do" + "cs/"
    let outside = Self.outsideNames[0]
    let pages: [String: String] = [
      docs + "good.md": "# Good\n## A section\n",
      docs + "methods/m.md": "# M\n## Derivation\n",
    ]
    let exists: (String) -> Bool = { pages[$0] != nil || $0 == docs + "methods" }
    let code = """
      // valid: \(docs)good.md#a-section, \(docs)good.md., (\(docs)methods/m.md#derivation), \(docs)methods/
      // missing page: \(docs)nowhere.md#a-section
      // missing section: \(docs)good.md#no-such-section
      // by title: (\(docs)good.md, "A section")
      // outside: (\(outside) §0.4)
      """
    let page = """
      # P
      [ok](good.md#a-section) [ok](#p) [ok](methods/m.md) [web](https://example.com/x.md#y)
      [bad](../good.md) [bad](good.md#nope) [bad](#nope)
      ```
      [in a code block](nowhere.md)
      ```
      """
    var pagesWithP = pages
    pagesWithP[docs + "p.md"] = page
    let existsWithP: (String) -> Bool = { pagesWithP[$0] != nil || $0 == docs + "methods" }
    let a = DocumentReferences.scan(code, file: "Sources/X/X.swift", outsideNames: Self.outsideNames, exists: exists)
    let b = DocumentReferences.scan(page, file: docs + "p.md", outsideNames: Self.outsideNames, exists: existsWithP)
    let broken = Self.brokenCitations(a.citations + b.citations, exists: existsWithP, markdown: { pagesWithP[$0] })
    #expect(broken.count == 5, "\(broken.joined(separator: "\n"))")
    #expect(broken.contains { $0.hasPrefix("Sources/X/X.swift:2:") && $0.contains("not in the repository") })
    #expect(broken.contains { $0.hasPrefix("Sources/X/X.swift:3:") && $0.contains("no such heading") })
    #expect(broken.contains { $0.hasPrefix(docs + "p.md:3:") && $0.contains("cites good.md,") })
    #expect(broken.contains { $0.hasPrefix(docs + "p.md:3:") && $0.contains("good.md#nope") })
    #expect(broken.contains { $0.hasPrefix(docs + "p.md:3:") && $0.contains("p.md#nope") })
    #expect(a.problems.count == 2, "\(a.problems)")
    #expect(a.problems.contains { $0.line == 4 && $0.message.contains("by its title") })
    #expect(a.problems.contains { $0.line == 5 && $0.message.contains("outside the repository") })
    #expect(b.problems.isEmpty, "\(b.problems)")
    // A pending page is accepted while it is missing.
    for pending in Self.pendingDocuments.keys {
      let c = DocumentReferences.scan("// \(pending)", file: "Package.swift", outsideNames: [], exists: { _ in false })
      #expect(c.citations.count == 1)
      #expect(Self.brokenCitations(c.citations, exists: { _ in false }, markdown: { _ in nil }).isEmpty)
    }
  }
}
