// TEMPORARY stand-in until the export branch lands (HuggingFaceExport): writes only the pruned
// linear weights so that the pipeline can be exercised. Deleted at the merge.
import Foundation
import PruneKernels

public enum HuggingFaceExport {
  public static func write(model: TransformerLM, source: URL, to directory: URL, metadata: [String: String]) throws {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
    var w = SafetensorsWriter(metadata: metadata)
    for b in 0..<model.blockCount {
      for n in model.linearLayerNames(block: b) { try w.add(n + ".weight", matrix: try model.linearWeights(n).weight) }
    }
    try w.write(to: directory.appendingPathComponent("linears.safetensors"))
  }
}

public struct LineChart: Sendable {
  public struct Series: Sendable {
    public var name: String
    public var points: [(x: Double, y: Double)]
  }
  public var title: String
  public var xLabel: String
  public var yLabel: String
  public var series: [Series]
  public var logY: Bool
  public func svg() -> String { "<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>\n" }
}
