// ReplySink: whoever is owed replies from an upstream — a client session.
//
//   ClientSession ──dispatch(sink, slot, bytes)──► Pool ──► Connection FIFO
//        ▲                                                      │
//        └──────────── deliver(slot, reply bytes) ◄─────────────┘
//
// Slots are the client's own sequence numbers; the sink reorders by slot, so replies
// may be delivered in any order. The sink is held by shared_ptr for as long as a reply
// is owed, so a client that disconnects with commands in flight stays valid (its
// deliveries are dropped).
//
// Threading: everything happens on the owning worker's io_context thread.
#pragma once

#include <cstdint>
#include <string_view>

namespace tether::upstream {

class ReplySink {
 public:
  virtual ~ReplySink() = default;

  // One complete reply (from the upstream, or an error written by the proxy) for `slot`.
  // `reply` is only valid during the call.
  virtual void deliver(std::uint64_t slot, std::string_view reply) = 0;

  // Routing state, owned by the Pool: the connection that carries this client's
  // commands still in flight (0: none), so that pipelined commands of one client are
  // executed in the order sent, and how many of the client's commands are held.
  std::uint64_t affinity_conn = 0;
  std::uint32_t affinity_inflight = 0;
};

// The owner of a dedicated connection in relay mode (Connection::relay_to): a
// subscriber's replies are not one per request (a SUBSCRIBE of three channels is
// confirmed three times, messages arrive unsolicited), so every frame that arrives goes
// to it, in arrival order, whatever its type (RESP2 array or RESP3 push).
class RelaySink {
 public:
  virtual ~RelaySink() = default;
  // One complete frame; `frame` is only valid during the call.
  virtual void relayed(std::string_view frame) = 0;
  // A RESP3 push (a CLIENT TRACKING invalidation) on a dedicated connection that is not in
  // relay mode (Connection::forward_pushes_to): never the reply to a command.
  virtual void pushed(std::string_view frame) = 0;
};

}  // namespace tether::upstream
