#include "tether/app/memory_trim.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <memory>
#include <vector>

using namespace std::chrono_literals;

// Under AddressSanitizer malloc is the sanitizer's, not glibc's: there is no glibc heap to
// measure, so only the timer case runs in that build.
#if !defined(__SANITIZE_ADDRESS__)
namespace {

std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t size = 0;
  std::size_t resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// Many heap blocks (below the mmap threshold), touched, then freed except every 64th, so
// the freed memory sits between live blocks where free() alone cannot return it.
std::vector<std::unique_ptr<char[]>> fragment(std::size_t total, std::size_t block) {
  std::vector<std::unique_ptr<char[]>> blocks;
  for (std::size_t i = 0; i < total / block; ++i) {
    blocks.push_back(std::make_unique<char[]>(block));
    blocks.back()[block - 1] = 1;
  }
  std::vector<std::unique_ptr<char[]>> kept;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    if (i % 64 == 0) kept.push_back(std::move(blocks[i]));
  }
  return kept;
}

}  // namespace

TEST_CASE("memory trim: above the threshold freed heap memory leaves the resident set") {
  tether::asio::io_context io;
  tether::app::MemoryTrim trim(io, 10s, 16u << 20);
  auto kept = fragment(96u << 20, 32 * 1024);
  const auto before = resident_bytes();
  CHECK(trim.check() > (16u << 20));
  const auto after = resident_bytes();
  CHECK(after + (48u << 20) < before);
}

TEST_CASE("memory trim: below the threshold nothing is trimmed") {
  tether::asio::io_context io;
  tether::app::MemoryTrim trim(io, 10s, 1u << 30);
  auto kept = fragment(32u << 20, 32 * 1024);
  const auto before = resident_bytes();
  CHECK(trim.check() < (1u << 30));
  CHECK(resident_bytes() + (8u << 20) > before);
}

#endif

TEST_CASE("memory trim: runs on its timer until stopped") {
  tether::asio::io_context io;
  tether::app::MemoryTrim trim(io, 10ms, 16u << 20);
  trim.start();
  io.run_for(50ms);
  trim.stop();
  io.restart();
  io.run_for(100ms);  // the cancelled wait completes, and is not re-armed
  CHECK(io.stopped());
}
