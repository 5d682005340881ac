// MemoryTrim: gives the heap memory freed after a burst back to the kernel.
//
// A burst of clients or of pipelined requests grows the allocator's heaps; when it is over
// the memory is free but stays resident (glibc keeps freed chunks in its arenas, one per
// worker thread), so the process's RSS would stay at the peak. Every `interval` this checks
// how much free memory the arenas hold (mallinfo2) and, above `threshold`, calls
// malloc_trim, which returns the whole free pages of every arena to the kernel. Between
// bursts nothing is trimmed, so the data path never waits on it.
//
// Threading: runs on the io_context it is given (the main thread's); malloc_trim locks each
// arena briefly in turn.
#pragma once

#include <chrono>
#include <cstddef>

#include "tether/util/asio.hpp"

namespace tether::app {

class MemoryTrim {
 public:
  MemoryTrim(asio::io_context& io, std::chrono::milliseconds interval, std::size_t threshold);
  void start();
  void stop();
  // One check: trims when the arenas hold more than `threshold` free bytes; returns the
  // free bytes found.
  std::size_t check();

 private:
  void arm();

  asio::steady_timer timer_;
  std::chrono::milliseconds interval_;
  std::size_t threshold_;
  bool stopped_ = false;
};

}  // namespace tether::app
