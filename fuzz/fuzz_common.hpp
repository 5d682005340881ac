// Shared helpers of the libFuzzer targets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

namespace tether::fuzz {

// A heap copy of exactly `n` bytes, so that AddressSanitizer catches any read past the
// view a scanner was given (a growing buffer moves and has no slack to hide an overrun).
class ExactCopy {
 public:
  ExactCopy(const std::uint8_t* data, std::size_t n) : bytes_(new char[n == 0 ? 1 : n]), n_(n) {
    if (n != 0) std::memcpy(bytes_.get(), data, n);
  }
  std::string_view view() const { return {bytes_.get(), n_}; }

 private:
  std::unique_ptr<char[]> bytes_;
  std::size_t n_;
};

// A split offset derived from the data itself (FNV-1a), so every input carries its own.
inline std::size_t derived_offset(const std::uint8_t* data, std::size_t size) {
  std::uint64_t h = 1469598103934665603ULL;
  for (std::size_t i = 0; i < size; ++i)
    h = (h ^ data[i]) * 1099511628211ULL;
  return static_cast<std::size_t>(h % (size + 1));
}

// abort() with a message: libFuzzer reports it as a crash and saves the input.
[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "FUZZ_CHECK failed: %s\n", what);
  std::abort();
}

#define FUZZ_CHECK(cond)                      \
  do {                                        \
    if (!(cond)) ::tether::fuzz::fail(#cond); \
  } while (0)

}  // namespace tether::fuzz
