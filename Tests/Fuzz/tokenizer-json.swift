// libFuzzer entry point for the tokenizer.json reader (BPETokenizer), then encoding and decoding.
// Built and run by scripts/fuzz.sh; seed corpus in Fixtures/fuzz/tokenizer-json/corpus.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
  FuzzMain.run(.tokenizerJSON, bytes, count)
}
