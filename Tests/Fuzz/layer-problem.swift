// libFuzzer entry point for the layer-problem contract (LayerProblemFile, its problem in Float and Double, MaskFile).
// Built and run by scripts/fuzz.sh; seed corpus in Fixtures/fuzz/layer-problem/corpus.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
  FuzzMain.run(.layerProblem, bytes, count)
}
