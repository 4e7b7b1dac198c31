// libFuzzer entry point for the GGUF reader (GGUFFile: header, metadata, tensor infos, tensors, LLaMA config, tokenizer).
// Built and run by scripts/fuzz.sh; seed corpus in Fixtures/fuzz/gguf/corpus.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
  FuzzMain.run(.gguf, bytes, count)
}
