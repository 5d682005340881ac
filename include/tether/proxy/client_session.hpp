// ClientSession: one application connection.
//
//   socket ──► in_ ──► RequestScanner ──► route by command class
//                                          ├─ shared ────► Pool::dispatch(self, slot, bytes)
//                                          └─ refused / local ► error reply in its slot
//   Pool/Connection ──deliver(slot, reply)──► slots (reordered) ──► out_ ──► socket
//
// Each request gets the next slot number; replies are written strictly in slot order,
// whatever order they arrive in. Backpressure: reading pauses while max_pending slots are
// open or output_soft_limit bytes are buffered, and resumes as the client drains its
// replies; past output_hard_limit the client is closed (counted, logged). A malformed
// request gets Redis's protocol error after the replies owed before it, then the
// connection closes.
//
// Pinning: a command that needs the client's own upstream connection (MULTI ... EXEC,
// WATCH, a blocking command; CommandClass::pinned) gets one from the pool
// (request_dedicated). From then on every command of the client goes there, in order,
// once its commands still in flight on shared connections are answered, until its state
// ends (no MULTI or WATCH open) and nothing is owed there; then the connection is
// released (closed). If it dies while a transaction is open, EXEC gets -EXECABORT (as do
// the commands before EXEC or DISCARD): none of it ran on the new master.
//
// Threading: lives on one worker's io_context; no locks.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tether/metrics/metrics.hpp"
#include "tether/proxy/settings.hpp"
#include "tether/resp/request_scanner.hpp"
#include "tether/upstream/pool.hpp"
#include "tether/upstream/reply_sink.hpp"
#include "tether/util/asio.hpp"
#include "tether/util/byte_buffer.hpp"

namespace tether::proxy {

class ClientSession final : public upstream::ReplySink,
                            public upstream::DedicatedOwner,
                            public std::enable_shared_from_this<ClientSession> {
 public:
  using Socket = asio::generic::stream_protocol::socket;

  ClientSession(Socket socket, const ListenerSettings& settings, upstream::Pool& pool,
                const metrics::ServiceMetrics& metrics, std::function<void()> on_closed);
  ~ClientSession() override;
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  void start();
  // Called once when the session closes, whatever the reason.
  void set_on_closed(std::function<void()> f) { on_closed_ = std::move(f); }
  // Closes the connection now (limits, the drain bound); owed replies are dropped.
  void close();
  // Graceful stop (SIGTERM): reads no further request, writes every reply owed for the
  // requests already read, then closes. Bytes of later requests are never run.
  void drain();
  bool closed() const { return closed_; }

  void deliver(std::uint64_t slot, std::string_view reply) override;

  // upstream::DedicatedOwner
  void dedicated_ready(std::shared_ptr<upstream::Connection> connection) override;
  void dedicated_failed(const std::string& reason) override;
  void dedicated_lost(upstream::Connection& connection,
                      std::vector<upstream::Unsent> unsent) override;

  // Buffer accounting, bytes: what this session holds now.
  std::uint64_t buffered_in() const { return in_.capacity(); }
  std::uint64_t buffered_out() const;

 private:
  struct Parked {
    bool ready = false;
    bool via_pool = false;  // sent to the shared pool: counted in pool_outstanding_
    std::string bytes;
  };
  struct PinnedCommand {
    std::uint64_t slot;
    std::string bytes;
    std::string name;
    bool multi_before = false;  // the transaction state just before this command
    bool watch_before = false;
  };

  asio::awaitable<void> read_loop(std::shared_ptr<ClientSession> self);
  asio::awaitable<void> write_loop(std::shared_ptr<ClientSession> self);
  // Routes every complete request in in_; false when reading must stop for good.
  bool process_input(const std::shared_ptr<upstream::ReplySink>& self);
  bool route(const std::shared_ptr<upstream::ReplySink>& self, std::string_view bytes,
             const resp::Request& request);
  bool answer_local(std::string_view bytes, const resp::Request& request, std::string_view name);
  // A command for the client's dedicated connection (pinned class, or any while pinned).
  bool route_pinned(std::string_view bytes, std::string_view name);
  void track_pinned_state(std::string_view name);
  void answer_broken_transaction(std::uint64_t slot, std::string_view name);
  void flush_pinned();
  void maybe_unpin();
  void settle_not_run(std::deque<PinnedCommand> commands, bool retry, const std::string& failure,
                      resp::ErrorCode code);
  // Writes a proxy reply into the next slot.
  void reply_local(std::string_view reply);
  void refuse(resp::ErrorCode code, std::string reply);
  void protocol_failure(std::string reply, metrics::CloseReason reason, std::string_view why);
  bool paused() const;
  std::uint64_t pending_out_bytes() const;
  void account();
  std::string peer() const;

  Socket socket_;
  const ListenerSettings& settings_;
  upstream::Pool& pool_;
  const metrics::ServiceMetrics& metrics_;
  std::function<void()> on_closed_;
  asio::steady_timer write_wake_;
  asio::steady_timer read_wake_;

  util::ByteBuffer in_;
  resp::RequestScanner scanner_;

  std::uint64_t next_slot_ = 0;  // slot of the next request
  std::uint64_t head_slot_ = 0;  // slot of parked_.front()
  std::deque<Parked> parked_;    // one per open slot, oldest first
  std::uint64_t parked_bytes_ = 0;
  std::string out_;
  std::string writing_;
  bool writing_active_ = false;
  bool writer_idle_ = false;    // the write loop waits on write_wake_
  bool reader_parked_ = false;  // the read loop waits on read_wake_ (paused)

  // Pinning (see above). pinned_ is set once the pool handed the connection over.
  bool pin_requested_ = false;
  std::shared_ptr<upstream::Connection> pinned_;
  std::deque<PinnedCommand> pin_queue_;  // not yet written to pinned_
  // Written to pinned_ and not yet answered: slot -> (multi_before, watch_before).
  std::map<std::uint64_t, std::pair<bool, bool>> written_before_;
  std::string client_name_;  // CLIENT SETNAME, answered here (not the upstream's)
  bool in_multi_ = false;
  bool watching_ = false;
  bool pin_broken_ = false;             // the dedicated connection died with a transaction open
  std::uint64_t pool_outstanding_ = 0;  // shared-pool commands not yet answered

  bool closed_ = false;
  bool close_after_flush_ = false;  // protocol error, QUIT, drain: close once all is written
  bool paused_reported_ = false;
  std::uint64_t reported_in_ = 0;
  std::uint64_t reported_out_ = 0;
};

}  // namespace tether::proxy
