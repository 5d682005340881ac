// The hot path never allocates: global operator new/delete are replaced with counting
// versions (for the whole test binary; counting is switched on only around the code
// under test), then a warmed scanner and framer run over realistic traffic.
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdlib>
#include <new>
#include <string>

#include "tether/resp/command_table.hpp"
#include "tether/resp/reply_framer.hpp"
#include "tether/resp/request_scanner.hpp"

namespace {
bool g_counting = false;
std::size_t g_allocations = 0;

void* counted_alloc(std::size_t n, std::size_t align = 0) noexcept {
  if (g_counting) ++g_allocations;
  if (n == 0) n = 1;
  if (align <= alignof(std::max_align_t)) return std::malloc(n);
  return std::aligned_alloc(align, (n + align - 1) / align * align);
}
void* counted_alloc_or_throw(std::size_t n, std::size_t align = 0) {
  if (void* p = counted_alloc(n, align)) return p;
  throw std::bad_alloc();
}
}  // namespace

// Every replaceable form, so that nothing allocated by the runtime's versions is ever
// freed by ours (AddressSanitizer checks that they match).
void* operator new(std::size_t n) {
  return counted_alloc_or_throw(n);
}
void* operator new[](std::size_t n) {
  return counted_alloc_or_throw(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return counted_alloc(n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return counted_alloc(n);
}
void* operator new(std::size_t n, std::align_val_t a) {
  return counted_alloc_or_throw(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return counted_alloc_or_throw(n, static_cast<std::size_t>(a));
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_alloc(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_alloc(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}

using tether::resp::classify_command;
using tether::resp::ReplyFramer;
using tether::resp::RequestScanner;
using tether::resp::ScanStatus;

namespace {

// Frames every request of `stream`, feeding it in chunks of `chunk` bytes.
template <class Framer>
std::size_t frame_all(Framer& f, const std::string& stream, std::size_t chunk) {
  std::size_t start = 0;
  std::size_t avail = 0;
  std::size_t frames = 0;
  while (start < stream.size()) {
    avail = std::min(stream.size(), std::max(avail, start) + chunk);
    const ScanStatus st = f.scan(std::string_view(stream).substr(start, avail - start));
    if (st == ScanStatus::error) return 0;
    if (st == ScanStatus::need_more) continue;
    if constexpr (std::is_same_v<Framer, RequestScanner>) {
      start += f.request().size;
      classify_command(f.request().name);
    } else {
      start += f.reply().size;
    }
    f.reset();
    ++frames;
  }
  return frames;
}

}  // namespace

TEST_CASE("the counting allocator sees allocations", "[alloc]") {
  g_allocations = 0;
  g_counting = true;
  auto* p = new std::string(100, 'x');
  g_counting = false;
  delete p;
  CHECK(g_allocations >= 1);
}

TEST_CASE("a warmed RequestScanner and classify_command never allocate", "[alloc]") {
  std::string stream;
  for (int i = 0; i < 100; ++i) {
    stream += "*3\r\n$3\r\nSET\r\n$5\r\nkey:1\r\n$10\r\n0123456789\r\n";
    stream += "*2\r\n$3\r\nget\r\n$5\r\nkey:1\r\n";
    stream += "PING\r\n\"multi\" 'x y'\r\n\r\n*0\r\n";
    stream +=
        "*2\r\n$5\r\nBLPOP\r\n$" + std::to_string(300) + "\r\n" + std::string(300, 'v') + "\r\n";
  }
  RequestScanner scanner;
  REQUIRE(frame_all(scanner, stream, 7) == 700);  // warm-up
  for (const std::size_t chunk : {1, 3, 64, 4096}) {
    g_allocations = 0;
    g_counting = true;
    const std::size_t n = frame_all(scanner, stream, chunk);
    g_counting = false;
    CHECK(n == 700);
    CHECK(g_allocations == 0);
  }
}

TEST_CASE("a warmed ReplyFramer never allocates", "[alloc]") {
  std::string stream;
  for (int i = 0; i < 100; ++i) {
    stream += "+OK\r\n-ERR x\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*-1\r\n";
    stream += "*2\r\n*2\r\n:1\r\n$1\r\na\r\n%1\r\n+k\r\n~1\r\n_\r\n";
    stream += "|1\r\n+k\r\n+v\r\n>2\r\n+a\r\n#t\r\n$?\r\n;2\r\nab\r\n;0\r\n*?\r\n,1.5\r\n.\r\n";
  }
  ReplyFramer framer;
  REQUIRE(frame_all(framer, stream, 5) == 1000);  // warm-up
  for (const std::size_t chunk : {1, 3, 64, 4096}) {
    g_allocations = 0;
    g_counting = true;
    const std::size_t n = frame_all(framer, stream, chunk);
    g_counting = false;
    CHECK(n == 1000);
    CHECK(g_allocations == 0);
  }
}
