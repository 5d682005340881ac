#include "tether/app/memory_trim.hpp"

#include <malloc.h>
#include <spdlog/spdlog.h>

namespace tether::app {

MemoryTrim::MemoryTrim(asio::io_context& io, std::chrono::milliseconds interval,
                       std::size_t threshold)
    : timer_(io), interval_(interval), threshold_(threshold) {}

void MemoryTrim::start() {
  stopped_ = false;
  arm();
}

void MemoryTrim::stop() {
  stopped_ = true;
  timer_.cancel();
}

std::size_t MemoryTrim::check() {
  const auto before = mallinfo2();
  // fordblks: free bytes in the arenas' chunks; keepcost: the part at the top of the main
  // heap, which free() itself trims past M_TRIM_THRESHOLD.
  const std::size_t free_bytes = before.fordblks;
  if (free_bytes <= threshold_) return free_bytes;
  malloc_trim(0);
  spdlog::debug("event=memory_trimmed free_bytes={} arena_bytes={}", free_bytes, before.arena);
  return free_bytes;
}

void MemoryTrim::arm() {
  timer_.expires_after(interval_);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    check();
    arm();
  });
}

}  // namespace tether::app
