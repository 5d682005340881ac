// Reads a stream socket so that what a peer sent together is handled together.
//
// Asio posts a read's completion behind the handlers already queued. A read that filled all
// the room it was given has usually left the rest of the peer's burst in the socket, and read
// asynchronously that rest is handled only after other handlers ran: the upstream writer sent
// the first 15 commands of a client's 16-command pipeline of 1 KiB SETs alone, and a client's
// replies that straddled two upstream reads left in two writes. So after a full read the next
// read is synchronous, on the socket in non-blocking mode, before the event loop turns; at
// most kMax in a row, so that one peer streaming data cannot hold the loop.
//
// Use: construct before the read loop, then for each read
//   if (!chain.read_now(socket, buffer, n, ec)) {
//     n = co_await socket.async_read_some(buffer, ...ec);
//     chain.after(n, buffer.size());
//   }
// and reset() when the loop waited on anything else in between.
#pragma once

#include <cstddef>

#include "tether/util/asio.hpp"

namespace tether::util {

class ChainedReads {
 public:
  static constexpr std::size_t kMax = 4;

  // Puts `socket` in non-blocking mode for the synchronous reads; without it there are none.
  template <typename Socket>
  explicit ChainedReads(Socket& socket) {
    boost::system::error_code ec;
    socket.non_blocking(true, ec);
    enabled_ = !ec;
  }

  // Reads at once when the last read filled its room: true, with n and ec set as a read
  // sets them. False when the caller is to read asynchronously (and then call after()).
  template <typename Socket>
  bool read_now(Socket& socket, asio::mutable_buffer buffer, std::size_t& n,
                boost::system::error_code& ec) {
    if (!enabled_ || filled_ == 0 || filled_ > kMax) return false;
    n = socket.read_some(buffer, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec.clear();
      filled_ = 0;
      return false;
    }
    after(ec ? 0 : n, buffer.size());
    return true;
  }

  // Records how much a read took of the room it had.
  void after(std::size_t n, std::size_t room) { filled_ = n == room && n > 0 ? filled_ + 1 : 0; }

  // The reader waited on something else: its next read waits for the socket.
  void reset() { filled_ = 0; }

 private:
  bool enabled_ = false;
  std::size_t filled_ = 0;  // reads in a row that filled all their room
};

}  // namespace tether::util
