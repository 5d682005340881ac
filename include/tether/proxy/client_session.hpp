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
// Subscribers (client_session_pubsub.cpp): the SUBSCRIBE family pins the client the same
// way, but its dedicated connection runs in relay mode (Connection::relay_to): every
// frame comes back through relayed(), in order. Each command sent there knows how many
// non-message frames answer it (Subscriptions); messages go out as they arrive, between
// the replies as Redis would have placed them. Once the subscriptions (as the client's
// commands leave them) number 0 and every confirmation arrived, the connection is
// released and the client is back on the shared path. When the connection is lost (a
// failover), a new one re-subscribes everything whose confirmation the client got
// (swallowing the new confirmations), then sends again what was not yet confirmed,
// swallowing confirmations already passed on; a client that cannot be re-subscribed
// within hold.timeout gets its owed replies, then is closed (resubscribe_failed).
//
// MONITOR uses relay mode too: the feed's lines (+<time> [db addr] ...) go out as they
// arrive, ahead of the replies still owed, like messages; after a loss the new
// connection sends MONITOR again first (its +OK swallowed), so the feed goes on from the
// new master. RESET ends it (Redis's RESET, forwarded; the connection is then released).
//
// CLIENT TRACKING (without REDIRECT, whose id would name an upstream connection) pins the
// client while tracking is on; the connection forwards RESP3 pushes (invalidations) to
// the client as they come. After a loss the new connection gets the client's CLIENT
// TRACKING again first, and a RESP3 client gets an invalidation of everything (a null
// key list, as Redis sends at FLUSHALL): what changed meanwhile was never announced.
//
// Databases: SELECT n is answered by the proxy and moves the client to the pool of
// database n (ServicePools: connections that selected n in their handshake); its
// dedicated connections come from that pool too. Commands after a SELECT wait (reading
// pauses) until the client's commands still in flight on the previous database's pool
// are answered, so nothing overtakes them. While the client holds a dedicated
// connection, SELECT goes there like any command (inside MULTI Redis queues it): the
// client's database changes when Redis says +OK (or when the EXEC that ran it returns).
// RESET returns the client to database 0.
//
// AUTH and HELLO (client_session_auth.cpp): answered here, never forwarded with their
// options. With services[].client_password set, only AUTH, HELLO, QUIT and RESET run
// before the client authenticates. HELLO 3 pins the client (as above) for as long as it
// speaks RESP3; a replacement connection gets HELLO 3 first, its reply dropped.
//
// Session mode (pool.mode: session): the client asks for its dedicated connection when it
// connects and keeps one for its whole life; every command goes there as when pinned. A
// lost connection is replaced on the client's next command, from the pool of its
// database, and the client's state is replayed on it first: its protocol (HELLO 3) as for
// any pinned client, its name (CLIENT SETNAME, unanswered), its subscriptions (as for any
// subscriber), its CLIENT TRACKING (as for any tracking client). RESET is forwarded on a dedicated
// connection (whatever the mode), then the connection logs in again (AUTH, unanswered): it is back
// in database 0, RESP2, no name.
//
// Threading: lives on one worker's io_context; no locks.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tether/metrics/metrics.hpp"
#include "tether/proxy/settings.hpp"
#include "tether/proxy/subscriptions.hpp"
#include "tether/resp/command_table.hpp"
#include "tether/resp/request_scanner.hpp"
#include "tether/upstream/pool.hpp"
#include "tether/upstream/reply_sink.hpp"
#include "tether/upstream/service_pools.hpp"
#include "tether/util/asio.hpp"
#include "tether/util/byte_buffer.hpp"

namespace tether::proxy {

class ClientSession final : public upstream::ReplySink,
                            public upstream::DedicatedOwner,
                            public upstream::RelaySink,
                            public std::enable_shared_from_this<ClientSession> {
 public:
  using Socket = asio::generic::stream_protocol::socket;

  ClientSession(Socket socket, const ListenerSettings& settings, upstream::ServicePools& pools,
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

  // upstream::RelaySink: a frame from the subscriber's dedicated connection.
  void relayed(std::string_view frame) override;
  // A RESP3 push on the client's dedicated connection (CLIENT TRACKING): passed on.
  void pushed(std::string_view frame) override;
  // The client's subscriptions, as its commands leave them.
  const Subscriptions& subscriptions() const { return subs_; }

  // Buffer accounting, bytes: what this session holds now.
  std::uint64_t buffered_in() const { return in_.capacity(); }
  std::uint64_t buffered_out() const;
  // The database the client's commands run in (SELECT).
  std::uint32_t database() const { return db_; }

 private:
  struct Parked {
    bool ready = false;
    bool via_pool = false;  // sent to the shared pool: counted in pool_outstanding_
    bool silent = false;    // CLIENT REPLY OFF / SKIP: the reply is dropped
    std::string bytes;
  };
  struct PinnedCommand {
    std::uint64_t slot;
    std::string bytes;
    std::string name;
    bool multi_before = false;  // the transaction state just before this command
    bool watch_before = false;
    bool resp3_before = false;  // the client's protocol for this command (HELLO 3)
    bool exec_nil = false;      // an EXEC whose WATCH was lost: sent as DISCARD, answered nil
    // An EXEC of a transaction with a command the proxy refused: sent as DISCARD, answered
    // -EXECABORT, as Redis answers one with a command it refused.
    bool exec_abort = false;
    // CLIENT TRACKING (null: off) and, in session mode, the client's name, as they were
    // when the command was routed: what a replacement connection is given first.
    std::shared_ptr<const std::string> tracking_before;
    std::string name_before;
  };
  struct PinnedState {  // a written command's *_before flags, and its exec_nil / exec_abort
    bool multi = false;
    bool watch = false;
    bool resp3 = false;
    bool exec_nil = false;
    bool exec_abort = false;
  };

  // A command sent to a subscriber's relay-mode connection.
  struct Relayed {
    std::optional<std::uint64_t> slot;              // none: a re-subscription, answered to nobody
    std::string bytes;                              // the request, kept to be sent again
    std::optional<Subscriptions::Command> command;  // a SUBSCRIBE-family command
    std::vector<std::string> args;                  // its arguments
    std::size_t expected = 1;                       // non-message frames that answer it
    std::size_t got = 0;                            // of those, arrived
    std::size_t skip = 0;    // passed on before a loss: swallowed when sent again
    std::size_t passed = 0;  // passed on to the client
    bool plain = false;      // sent with no subscription: its reply is never a message
    bool reset = false;      // RESET, sent as the three UNSUBSCRIBEs, answered +RESET
    bool ping = false;       // PING: sent again after a loss like the SUBSCRIBE family
    bool monitor = false;    // MONITOR: sent again after a loss, its +OK then swallowed
    std::string reply;       // arrived while its slot was not the oldest open one
  };

  asio::awaitable<void> read_loop(std::shared_ptr<ClientSession> self);
  asio::awaitable<void> write_loop(std::shared_ptr<ClientSession> self);
  // Routes every complete request in in_; false when reading must stop for good.
  bool process_input(const std::shared_ptr<upstream::ReplySink>& self);
  bool route(const std::shared_ptr<upstream::ReplySink>& self, std::string_view bytes,
             const resp::Request& request);
  bool answer_local(std::string_view bytes, const resp::Request& request, std::string_view name);
  // A shared-class command to the client's database pool; true (it was forwarded).
  bool dispatch_shared(const std::shared_ptr<upstream::ReplySink>& self, std::string_view bytes);
  // AUTH, HELLO, the client's protocol (client_session_auth.cpp).
  // Answers -NOAUTH (true) when the client must AUTH first and `name` is not allowed before.
  bool refuse_unauthenticated(std::string_view name);
  // AUTH or HELLO (`name`); true when something was forwarded.
  bool answer_auth_or_hello(const std::shared_ptr<upstream::ReplySink>& self,
                            std::string_view bytes, const resp::Request& request,
                            std::string_view name);
  void answer_auth(std::string_view bytes, const resp::Request& request);
  bool answer_hello(const std::shared_ptr<upstream::ReplySink>& self, std::string_view bytes,
                    const resp::Request& request);
  // RESET: logged out (when a password is set) and back to RESP2.
  void reset_auth_and_protocol();
  // Before `command` is written to pinned_: a HELLO (reply dropped) if the connection's
  // protocol is not the one the command was sent in.
  void align_pinned_protocol(const PinnedCommand& command);
  // Writes a command of the proxy's own to the dedicated connection; its reply is dropped.
  void send_unanswered(std::string_view bytes);
  // Session mode: the client's name on the dedicated connection (CLIENT SETNAME).
  void align_pinned_name(const PinnedCommand& command);
  // After a forwarded RESET: the connection logs in again (it is logged out, in database 0,
  // RESP2, without a name).
  void after_pinned_reset();
  // RESET while the client holds (or waits for) a dedicated connection: forwarded there.
  bool forward_reset(std::string_view bytes);
  // CLIENT TRACKING / CACHING / GETREDIR / TRACKINGINFO: on the client's own connection.
  bool route_tracking(std::string_view bytes, const resp::Request& request);
  // A new dedicated connection gets the client's CLIENT TRACKING (as of `command`) first.
  void align_pinned_tracking(const PinnedCommand& command);
  // RESET's effect on the proxy's record of the client, as Redis resets a connection: no
  // name, database 0, replies on, tracking off (the transaction state is the route's;
  // reset_auth_and_protocol() follows the routing).
  void reset_client_state();
  // The handshake's AUTH for the upstream (empty without a password).
  std::string upstream_auth() const;
  // What Redis pushes at FLUSHALL to a RESP3 client that tracks keys: forget them all.
  static constexpr std::string_view kInvalidateAll = ">2\r\n$10\r\ninvalidate\r\n_\r\n";
  // SELECT n: answered here and moves the client to database n's pool, or forwarded to
  // the dedicated connection while the client holds one.
  bool select_db(std::string_view bytes, const resp::Request& request);
  // An EXEC or DISCARD ends a transaction that queued a SELECT (see db_changes_).
  void note_transaction_end(std::string_view name);
  // A reply for a forwarded SELECT (or the EXEC that ran one): the database changes if
  // it succeeded.
  void apply_db_change(std::uint64_t slot, std::string_view reply);
  // The pool of the client's database.
  upstream::Pool& pool() { return pools_.pool(db_); }
  // Commands after a SELECT wait while earlier ones are in flight in another database.
  bool db_blocked() const { return pool_outstanding_ > 0 && outstanding_db_ != db_; }
  // A command for the client's dedicated connection (pinned class, or any while pinned).
  bool route_pinned(std::string_view bytes, std::string_view name);
  void track_pinned_state(std::string_view name);
  void answer_broken_transaction(std::uint64_t slot, std::string_view name);
  void flush_pinned();
  void maybe_unpin();
  // Subscribers (client_session_pubsub.cpp).
  bool route_relay(std::string_view bytes, const resp::Request& request, std::string_view name);
  // While relay_: whether a command of class `cls` goes to the relay-mode connection.
  bool relays(resp::CommandClass cls, std::string_view name) const;
  bool flush_relay();
  void complete_relayed();
  void emit_unsolicited(std::string_view frame);
  void relay_lost(std::vector<upstream::Unsent> unsent);
  void resubscribe_failed(const std::string& reply, resp::ErrorCode code);
  void settle_not_run(std::deque<PinnedCommand> commands, bool retry, const std::string& failure,
                      resp::ErrorCode code);
  // The next slot, for a request owed a reply (silent per CLIENT REPLY).
  std::uint64_t open_slot(bool via_pool = false);
  void end_reply_off();
  // Writes a proxy reply into the next slot.
  void reply_local(std::string_view reply);
  void refuse(resp::ErrorCode code, std::string reply);
  void protocol_failure(std::string reply, metrics::CloseReason reason, std::string_view why);
  // Wakes the write loop if it waits for output (one wake per batch).
  void wake_writer();
  // Past output_hard_limit the client is closed (logged, counted); true when it was.
  bool close_if_over_output_limit();
  bool paused() const;
  std::uint64_t pending_out_bytes() const;
  void account();
  std::string peer() const;

  Socket socket_;
  const ListenerSettings& settings_;
  upstream::ServicePools& pools_;
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
  // Written to pinned_ and not yet answered: slot -> the state before it.
  std::map<std::uint64_t, PinnedState> written_before_;
  std::string client_name_;        // CLIENT SETNAME, answered here (not the upstream's)
  const std::uint64_t client_id_;  // CLIENT ID, answered here
  // CLIENT REPLY OFF / SKIP: replies not written (silence_: for the request being routed).
  bool reply_off_ = false;
  bool skip_next_reply_ = false;
  bool skip_this_reply_ = false;
  bool silence_ = false;
  // AUTH (services[].client_password; none: authenticated from the start, as in Redis).
  bool authenticated_ = settings_.client_password.empty();
  const bool session_;       // pool.mode: session, as it was when the client connected
  std::string pinned_name_;  // session mode: the name set on pinned_, as far as written
  // CLIENT TRACKING ON ...: the request (replayed on a replacement connection), null while
  // tracking is off; whether pinned_'s tracking follows the client's commands (false on a
  // new connection until the replay); a CLIENT TRACKING in flight: slot -> (the state
  // before, the state it set), undone if Redis refuses it.
  std::shared_ptr<const std::string> tracking_;
  bool pinned_tracking_ = false;
  std::map<std::uint64_t,
           std::pair<std::shared_ptr<const std::string>, std::shared_ptr<const std::string>>>
      tracking_changes_;
  // A command the proxy refused inside the open MULTI: its EXEC gets -EXECABORT.
  bool multi_refused_ = false;
  bool resp3_ = false;         // HELLO 3: the client speaks RESP3 (and is pinned for it)
  bool pinned_resp3_ = false;  // pinned_'s protocol, as far as commands were written
  std::shared_ptr<upstream::ReplySink> discard_;  // owner of send_unanswered's commands
  bool in_multi_ = false;
  bool watching_ = false;
  bool pin_broken_ = false;  // the dedicated connection died with a MULTI open
  // The dedicated connection died with a WATCH (and no MULTI) open: the keys are no longer
  // watched, so the transaction's EXEC is answered as a failed WATCH (nil), never run.
  bool watch_lost_ = false;
  std::uint64_t pool_outstanding_ = 0;  // shared-pool commands not yet answered
  std::uint32_t outstanding_db_ = 0;    // the database of those commands
  std::uint32_t db_ = 0;                // SELECT
  // Forwarded SELECTs (and EXECs of transactions that queued one) awaiting their reply:
  // slot -> (database, is EXEC).
  std::map<std::uint64_t, std::pair<std::uint32_t, bool>> db_changes_;
  std::optional<std::uint32_t> select_in_multi_;  // the last SELECT queued in MULTI
  // Subscriber state (see above). relay_ is set from the first SUBSCRIBE-family command
  // until the dedicated connection is released.
  bool relay_ = false;
  Subscriptions subs_;       // as the client's commands leave them
  Subscriptions confirmed_;  // as far as their confirmations arrived
  // MONITOR (relay mode too): as the client's commands leave it, and as confirmed (+OK).
  bool monitor_ = false;
  bool monitor_confirmed_ = false;
  std::deque<Relayed> relay_queue_;  // not yet written
  std::deque<Relayed> relay_sent_;   // written, not yet fully answered

  bool closed_ = false;
  bool close_after_flush_ = false;  // protocol error, QUIT, drain: close once all is written
  bool paused_reported_ = false;
  std::uint64_t reported_in_ = 0;
  std::uint64_t reported_out_ = 0;
};

}  // namespace tether::proxy
