// libFuzzer entry point for the safetensors reader (SafetensorsFile: header and data).
// Built and run by scripts/fuzz.sh; seed corpus in Fixtures/fuzz/safetensors/corpus.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
  FuzzMain.run(.safetensors, bytes, count)
}
