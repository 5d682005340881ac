// ByteBuffer: a read buffer with a consumed prefix, for socket input.
//
//   [ consumed | readable() ............ | writable (prepare) ]
//   0          start_                     end_                 capacity
//
// Grows by doubling only when a caller needs more room than is free after compacting,
// and shrinks back to its initial size once empty (so one large request does not pin
// memory for the life of a connection). Threading: single owner.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace tether::util {

class ByteBuffer {
 public:
  explicit ByteBuffer(std::size_t initial = 16 * 1024) : initial_(initial) {}

  std::string_view readable() const { return {data_.get() + start_, end_ - start_}; }
  std::size_t size() const { return end_ - start_; }
  bool empty() const { return start_ == end_; }
  std::size_t capacity() const { return capacity_; }

  // Returns room for at least `min_free` more bytes (moving unread bytes to the front or
  // growing when needed); commit() what was written.
  std::pair<char*, std::size_t> prepare(std::size_t min_free = 4096) {
    if (!data_) allocate(initial_ < min_free ? min_free : initial_);
    if (capacity_ - end_ < min_free && start_ > 0) compact();
    if (capacity_ - end_ < min_free) {
      std::size_t cap = capacity_;
      while (cap - size() < min_free)
        cap *= 2;
      reallocate(cap);
    }
    return {data_.get() + end_, capacity_ - end_};
  }
  void commit(std::size_t n) { end_ += n; }

  void consume(std::size_t n) {
    start_ += n;
    if (start_ == end_) {
      start_ = end_ = 0;
      if (capacity_ > 4 * initial_) release();  // drop memory a large request needed
    }
  }

  void release() {
    data_.reset();
    capacity_ = start_ = end_ = 0;
  }

 private:
  void allocate(std::size_t cap) {
    data_ = std::make_unique_for_overwrite<char[]>(cap);
    capacity_ = cap;
    start_ = end_ = 0;
  }
  void compact() {
    std::memmove(data_.get(), data_.get() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  void reallocate(std::size_t cap) {
    auto fresh = std::make_unique_for_overwrite<char[]>(cap);
    if (end_ > start_) std::memcpy(fresh.get(), data_.get() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
    data_ = std::move(fresh);
    capacity_ = cap;
  }

  std::size_t initial_;
  std::unique_ptr<char[]> data_;
  std::size_t capacity_ = 0;
  std::size_t start_ = 0;
  std::size_t end_ = 0;
};

}  // namespace tether::util
