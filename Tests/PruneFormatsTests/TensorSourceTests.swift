import PruneFormats
import PruneKernels
import Testing

@Suite struct TensorSourceTests {
  @Test func inMemoryTensorsAnswerShapesAndMissingNames() throws {
    let t = FloatTensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
    let source = InMemoryTensors(["b.weight": t, "a.weight": FloatTensor(shape: [3], values: [0, 0, 1])])
    #expect(source.tensorNames == ["a.weight", "b.weight"])
    #expect(source.shape(of: "b.weight") == [2, 3])
    #expect(source.shape(of: "c.weight") == nil)
    #expect(try source.floatTensor("b.weight").matrix()[1, 2] == 6)
    #expect(throws: TensorSourceError.missingTensor(name: "c.weight", source: "memory")) {
      try source.floatTensor("c.weight")
    }
  }
}
