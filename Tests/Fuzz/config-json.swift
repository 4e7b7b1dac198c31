// libFuzzer entry point for the config.json parser (ModelConfig) and the forward config derived
// from it (ForwardConfig).
// Built and run by scripts/fuzz.sh; seed corpus in Fixtures/fuzz/config-json/corpus.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
  FuzzMain.run(.configJSON, bytes, count)
}
