// Connection: one pipelined upstream connection shared by many clients.
//
//   enqueue(sink, slot, bytes) ──► queued_ ──(write loop: one write per batch)──► socket
//                                  fifo_: who is owed each reply, oldest first
//   socket ──► ReplyFramer ──► fifo_.front().sink->deliver(slot, reply)
//
// Life: dial → handshake (AUTH, SELECT n, CLIENT SETNAME, ROLE = master) → ready → serve
// until the socket dies or close(); a draining connection takes no new work and closes
// once its FIFO is empty. When it dies, commands whose bytes were never handed to the
// socket are given back to the pool to send elsewhere (they provably did not run); every
// command already written gets -OUTCOMEUNKNOWN.
//
// Refusals (DESIGN promise 3): a reply -READONLY, -LOADING or -MASTERDOWN means the node
// is no longer a serving master and ran nothing more than reads from that command on.
// The connection then gives back that command and every one after it (written or not;
// written bytes are kept in sent_ until their reply arrives) to be sent elsewhere, and
// closes. The client never sees the refusal.
//
// Relay mode (relay_to, dedicated connections of subscribers only): every frame read goes
// to the one RelaySink in arrival order; nothing written is matched to a reply, so when
// the connection dies only the commands never written are handed back (on_lost) and no
// -OUTCOMEUNKNOWN is delivered: the owner knows what it still expects. Shared connections
// never take this path (the choice is made once per read, not per reply).
//
// Threading: lives on one worker's io_context; no locks.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tether/metrics/metrics.hpp"
#include "tether/resp/reply_framer.hpp"
#include "tether/upstream/reply_sink.hpp"
#include "tether/upstream/settings.hpp"
#include "tether/util/asio.hpp"

namespace tether::upstream {

// A command that never reached a socket, handed back for another connection or the hold.
struct Unsent {
  std::shared_ptr<ReplySink> sink;
  std::uint64_t slot = 0;
  std::string bytes;
};

class Connection;

// Implemented by the Pool.
class ConnectionEvents {
 public:
  virtual ~ConnectionEvents() = default;
  // The connection finished its handshake and can take work.
  virtual void on_ready(Connection& c) = 0;
  // The first reply to a command arrived on this connection (once per connection).
  virtual void on_first_reply(Connection& c) = 0;
  // The connection died; `unsent` did not run (never written, or refused: see refused())
  // and must be re-dispatched in order.
  virtual void on_lost(Connection& c, std::vector<Unsent> unsent) = 0;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using Socket = asio::generic::stream_protocol::socket;

  Connection(asio::any_io_executor ex, const PoolSettings& settings,
             const metrics::ServiceMetrics& metrics, ConnectionEvents& events, std::uint64_t id,
             std::uint64_t generation);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // The whole life of the connection; completes when it is closed. Returns true if it
  // became ready at some point (the pool resets its backoff then).
  asio::awaitable<bool> run();

  // Ready and not draining: may take new commands.
  bool accepting() const { return state_ == State::ready && !draining_ && !refused_ && !closing_; }
  // For a connection with nothing owed (e.g. idle since its handshake): false when the
  // server has closed it, or sent something unasked, though the read loop has not seen it
  // yet. One non-blocking peek at the socket.
  bool peer_open();
  bool ready() const { return state_ == State::ready; }

  // Appends one complete request. Precondition: accepting().
  void enqueue(const std::shared_ptr<ReplySink>& sink, std::uint64_t slot, std::string_view bytes);

  // Switches to relay mode for good (see above). Precondition: ready(), inflight() == 0.
  // The sink is held weakly; frames arriving after it is gone are dropped.
  void relay_to(std::weak_ptr<RelaySink> sink);
  bool relaying() const { return relaying_; }
  // Dedicated connections: RESP3 push frames (>...) go to `sink` (held weakly) instead of
  // being taken for the reply owed next. Shared connections never get pushes.
  void forward_pushes_to(std::weak_ptr<RelaySink> sink) {
    push_sink_ = std::move(sink);
    forwards_pushes_ = true;
  }

  // Take no new work; close once every owed reply has arrived.
  void drain();
  // Close now; in-flight commands get -OUTCOMEUNKNOWN, unsent ones go back to the pool.
  void close();

  std::uint64_t id() const { return id_; }
  std::uint64_t generation() const { return generation_; }
  std::size_t inflight() const { return fifo_.size(); }
  // Commands are queued that the write loop has not handed to the socket yet: more
  // commands enqueued now leave in the same write.
  bool batch_forming() const { return queued_count_ > 0; }
  // Why the last dial or handshake failed, for logs and -NOMASTER replies.
  const std::string& last_error() const { return last_error_; }
  // The node refused a command (-READONLY, -LOADING, -MASTERDOWN): it is not a serving
  // master. Set before on_lost.
  bool refused() const { return refused_; }
  // A ready connection died without close() or drain() asking for it. Set before on_lost.
  bool lost() const { return lost_; }

 private:
  enum class State { connecting, ready, closed };
  struct Owed {
    std::shared_ptr<ReplySink> sink;
    std::uint64_t slot;
    std::uint32_t bytes;  // request size, to find unsent bytes in queued_
  };

  asio::awaitable<bool> dial();
  asio::awaitable<bool> handshake();
  asio::awaitable<void> write_loop(std::shared_ptr<Connection> self);
  asio::awaitable<void> read_loop();
  // The next complete reply in the read buffer, consumed (`frame` points into it until the
  // next read): complete, need_more, or error (last_error_ says why).
  resp::ScanStatus next_frame(std::string_view& frame);
  // Frames complete replies in the read buffer and hands each to its owner.
  bool deliver_replies();
  // Relay mode: hands every complete frame to relay_sink_.
  bool relay_frames();
  // A refusal arrived for the FIFO's front: moves it and everything after it to retry_.
  void take_back_refused(std::string_view reply);
  void compact_sent();
  void fail_all();
  void set_state(State s);
  void fail(std::string why);

  asio::any_io_executor ex_;
  const PoolSettings& settings_;
  const metrics::ServiceMetrics& metrics_;
  ConnectionEvents& events_;
  const std::uint64_t id_;
  const std::uint64_t generation_;
  Socket socket_;
  asio::steady_timer deadline_;  // connect + handshake bound
  asio::steady_timer wake_;      // wakes the write loop
  State state_ = State::connecting;
  bool draining_ = false;
  bool writing_active_ = false;
  bool writer_idle_ = false;  // the write loop waits on wake_
  bool timed_out_ = false;
  bool closing_ = false;   // close() was called: not a failure
  bool refused_ = false;   // see refused()
  bool lost_ = false;      // see lost()
  bool replied_ = false;   // on_first_reply was called
  bool relaying_ = false;  // see relay_to()
  std::weak_ptr<RelaySink> relay_sink_;
  bool forwards_pushes_ = false;  // see forward_pushes_to()
  std::weak_ptr<RelaySink> push_sink_;

  std::string queued_;  // requests not yet handed to the socket
  // Requests handed to the socket whose replies are still owed, oldest at sent_off_; the
  // batch being written is its tail. Not moved while a write is active.
  std::string sent_;
  std::size_t sent_off_ = 0;
  std::size_t queued_count_ = 0;  // the last queued_count_ entries of fifo_ are in queued_
  std::vector<Unsent> retry_;     // refused and later commands, for on_lost
  std::deque<Owed> fifo_;

  std::vector<char> rbuf_;
  std::size_t rstart_ = 0;
  std::size_t rend_ = 0;
  resp::ReplyFramer framer_;
  std::string last_error_;
};

}  // namespace tether::upstream
