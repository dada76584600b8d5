// libFuzzer's entry point for programs with their own main (LLVM's libFuzzer docs, "Using
// libFuzzer as a library"). Defined by the runtime that `-sanitize=fuzzer` links in.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
