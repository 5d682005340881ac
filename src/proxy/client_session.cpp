#include "tether/proxy/client_session.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>

#include "tether/proxy/client_auth.hpp"
#include "tether/resp/command_table.hpp"
#include "tether/resp/error_replies.hpp"
#include "tether/resp/value.hpp"
#include "tether/util/chained_reads.hpp"
#include "tether/util/units.hpp"

namespace tether::proxy {
namespace {

using asio::use_awaitable;
using boost::system::error_code;

// Least free room a read asks of the input buffer. It reads into all the free room (16 KiB
// when the buffer is new); the buffer grows only when a partial request leaves less than
// this, so a burst just above 16 KiB does not double it. Larger requests take more reads.
constexpr std::size_t kReadChunk = 4 * 1024;
// Output strings that grew past this for a burst are released once written, so an idle
// client keeps at most two buffers of this size (Redis keeps a 16 KiB reply buffer).
constexpr std::size_t kKeepOutputCapacity = 16 * 1024;

// Sent before a client's WAIT on its dedicated connection (see flush_pinned).
constexpr std::string_view kWaitMark =
    "*3\r\n$7\r\nPUBLISH\r\n$19\r\n__redis-tether:wait\r\n$0\r\n\r\n";

// CLIENT TRACKING / CACHING / GETREDIR / TRACKINGINFO (a request named CLIENT).
bool tracking_family(std::string_view bytes, const resp::Request& request) {
  resp::ArgIterator args(bytes, request);
  std::string scratch;
  std::string_view sub;
  args.next(sub, scratch);  // CLIENT
  if (!args.next(sub, scratch)) return false;
  return resp::is_word(sub, "TRACKING") || resp::is_word(sub, "CACHING") ||
         resp::is_word(sub, "GETREDIR") || resp::is_word(sub, "TRACKINGINFO");
}

// CLIENT ID: unique per client in the process, from 1, across workers.
std::atomic<std::uint64_t> next_client_id{1};

}  // namespace

ClientSession::ClientSession(Socket socket, const ListenerSettings& settings,
                             upstream::ServicePools& pools, const metrics::ServiceMetrics& metrics,
                             std::function<void()> on_closed)
    : socket_(std::move(socket)),
      settings_(settings),
      pools_(pools),
      metrics_(metrics),
      on_closed_(std::move(on_closed)),
      write_wake_(socket_.get_executor()),
      read_wake_(socket_.get_executor()),
      scanner_(settings.protocol),
      client_id_(next_client_id.fetch_add(1, std::memory_order_relaxed)),
      session_(settings.session_mode) {
  write_wake_.expires_at(asio::steady_timer::time_point::max());
  read_wake_.expires_at(asio::steady_timer::time_point::max());
  metrics_.client_connections->Increment();
  metrics_.client_accepted->Increment();
}

ClientSession::~ClientSession() {
  metrics_.client_connections->Decrement();
  metrics_.buffer_in_bytes->Decrement(static_cast<double>(reported_in_));
  metrics_.buffer_out_bytes->Decrement(static_cast<double>(reported_out_));
  if (paused_reported_) metrics_.reads_paused->Decrement();
}

void ClientSession::start() {
  auto self = shared_from_this();
  // Session mode: the client's own connection is on its way before its first command.
  if (session_ && pool().request_dedicated(weak_from_this())) pin_requested_ = true;
  asio::co_spawn(socket_.get_executor(), read_loop(self), asio::detached);
  asio::co_spawn(socket_.get_executor(), write_loop(self), asio::detached);
}

void ClientSession::close() {
  if (closed_) return;
  closed_ = true;
  error_code ignored;
  socket_.close(ignored);
  write_wake_.cancel();
  read_wake_.cancel();
  parked_.clear();
  parked_bytes_ = 0;
  out_.clear();
  in_.release();
  pin_queue_.clear();
  relay_queue_.clear();
  relay_sent_.clear();
  if (pinned_) pool().release_dedicated(std::exchange(pinned_, nullptr));
  account();
  if (on_closed_) std::exchange(on_closed_, nullptr)();
}

void ClientSession::drain() {
  if (closed_ || close_after_flush_) return;
  close_after_flush_ = true;
  // A reader blocked in a read stays there until close(); one paused by backpressure
  // wakes, sees close_after_flush_ and ends.
  if (reader_parked_) read_wake_.cancel();
  wake_writer();
}

std::uint64_t ClientSession::pending_out_bytes() const {
  return out_.size() + writing_.size() + parked_bytes_;
}

std::uint64_t ClientSession::buffered_out() const {
  return out_.capacity() + writing_.capacity() + parked_bytes_;
}

bool ClientSession::paused() const {
  return parked_.size() >= settings_.max_pending ||
         pending_out_bytes() >= settings_.output_soft_limit;
}

void ClientSession::account() {
  const std::uint64_t in = in_.capacity();
  const std::uint64_t out = closed_ ? 0 : buffered_out();
  if (in != reported_in_) {
    metrics_.buffer_in_bytes->Increment(static_cast<double>(in) -
                                        static_cast<double>(reported_in_));
    reported_in_ = in;
  }
  if (out != reported_out_) {
    metrics_.buffer_out_bytes->Increment(static_cast<double>(out) -
                                         static_cast<double>(reported_out_));
    reported_out_ = out;
  }
  const bool p = !closed_ && paused();
  if (p != paused_reported_) {
    if (p) {
      metrics_.reads_paused->Increment();
      metrics_.limit_hit(parked_.size() >= settings_.max_pending
                             ? metrics::Limit::max_pending
                             : metrics::Limit::output_soft_limit);
    } else {
      metrics_.reads_paused->Decrement();
    }
    paused_reported_ = p;
  }
}

std::string ClientSession::peer() const {
  error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  if (ec) return "unknown";
  if (ep.protocol().family() == AF_INET || ep.protocol().family() == AF_INET6) {
    asio::ip::tcp::endpoint tcp;
    std::memcpy(tcp.data(), ep.data(), std::min<std::size_t>(ep.size(), sizeof(sockaddr_in6)));
    return tcp.address().to_string() + ":" + std::to_string(tcp.port());
  }
  return "unix";
}

asio::awaitable<void> ClientSession::read_loop(std::shared_ptr<ClientSession> self) {
  const std::shared_ptr<upstream::ReplySink> sink = self;
  util::ChainedReads chain(socket_);  // a pipeline larger than one read is routed whole
  while (!closed_) {
    if (!process_input(sink)) break;
    account();
    if (paused() || db_blocked()) {
      error_code ec;
      reader_parked_ = true;
      co_await read_wake_.async_wait(asio::redirect_error(use_awaitable, ec));
      reader_parked_ = false;
      chain.reset();
      continue;
    }
    auto [ptr, room] = in_.prepare(kReadChunk);
    const auto buffer = asio::buffer(ptr, room);
    error_code ec;
    std::size_t n = 0;
    if (!chain.read_now(socket_, buffer, n, ec)) {
      n = co_await socket_.async_read_some(buffer, asio::redirect_error(use_awaitable, ec));
      chain.after(n, buffer.size());
    }
    if (ec) {
      // The client went away (or close() ran). Replies still owed are dropped on arrival.
      close();
      break;
    }
    in_.commit(n);
  }
}

bool ClientSession::process_input(const std::shared_ptr<upstream::ReplySink>& self) {
  std::uint64_t forwarded = 0;
  bool keep_reading = true;
  while (!closed_ && !close_after_flush_ && !paused() && !db_blocked() && !in_.empty()) {
    auto view = in_.readable();
    auto status = scanner_.scan(view);
    if (status == resp::ScanStatus::need_more) {
      if (view.size() > settings_.max_request_bytes) {
        protocol_failure(
            resp::request_too_large_error(util::format_size(settings_.max_request_bytes)),
            metrics::CloseReason::request_too_large, "request larger than max_request_bytes");
        metrics_.limit_hit(metrics::Limit::max_request_bytes);
        keep_reading = false;
      }
      break;
    }
    if (status == resp::ScanStatus::error) {
      protocol_failure(resp::protocol_error(scanner_.error_message()),
                       metrics::CloseReason::protocol_error, scanner_.error_message());
      keep_reading = false;
      break;
    }
    const resp::Request request = scanner_.request();
    if (request.argc > 0) {
      // CLIENT REPLY: whether this request's reply is written (route() may change it).
      skip_this_reply_ = std::exchange(skip_next_reply_, false);
      silence_ = reply_off_ || skip_this_reply_;
      if (route(self, view.substr(0, request.size), request)) {
        ++forwarded;
      } else if (close_after_flush_) {
        keep_reading = false;
      }
    }
    scanner_.reset();
    in_.consume(request.size);
  }
  if (forwarded > 0) metrics_.commands_forwarded->Increment(static_cast<double>(forwarded));
  return keep_reading && !closed_ && !close_after_flush_;
}

// Returns true when the request was forwarded upstream.
bool ClientSession::route(const std::shared_ptr<upstream::ReplySink>& self, std::string_view bytes,
                          const resp::Request& request) {
  const auto cls = resp::classify_request(bytes, request);
  // Upper-cased name, only for the replies that name the command.
  std::array<char, 64> upper;
  auto name = [&] {
    return std::string_view(upper.data(),
                            resp::upper_name(request.name, upper.data(), upper.size()));
  };
  if (!authenticated_ && refuse_unauthenticated(name())) return false;
  if (!settings_.deny_commands.empty()) {
    const auto n = name();
    if (std::find(settings_.deny_commands.begin(), settings_.deny_commands.end(), n) !=
        settings_.deny_commands.end()) {
      refuse(resp::ErrorCode::denied, resp::denied_error(n));
      return false;
    }
  }
  // A RESP2 subscriber: Redis refuses AUTH and HELLO in its own words, and so does the
  // proxy, which never sends them (they may carry the client's password) to Redis. A
  // RESP3 subscriber has them answered as any client does.
  if (relay_ && subs_.count() > 0 && !resp3_ && cls == resp::CommandClass::local) {
    const auto n = name();
    if (n == "AUTH" || n == "HELLO") {
      reply_local(resp::subscriber_context_error(n == "AUTH" ? "auth" : "hello"));
      return false;
    }
  }
  // Commands with connection state of their own (transactions, WATCH, blocking commands,
  // WAIT, SELECT, HELLO) are not followed on a subscriber's relay connection: refused
  // while Redis would run them there, i.e. for a RESP3 subscriber, or for a RESP2 client
  // whose last UNSUBSCRIBE is not confirmed yet. (A RESP2 subscriber gets Redis's refusal.)
  if (relay_ && (resp3_ || subs_.count() == 0)) {
    const auto n = name();
    if (cls == resp::CommandClass::pinned || n == "SELECT" || n == "HELLO") {
      refuse(resp::ErrorCode::not_supported, resp::while_subscribed_error(n));
      return false;
    }
  }
  // A subscriber's commands go to its relay-mode connection, in order (QUIT is answered
  // here; commands the proxy refuses stay refused).
  if (cls == resp::CommandClass::pubsub || (relay_ && relays(cls, name()))) {
    if (name() == "RESET") reset_client_state();  // before its slot opens (CLIENT REPLY)
    return route_relay(bytes, request, name());
  }
  // While pinned (or waiting for the dedicated connection, or with a transaction whose
  // connection was lost) every forwarded command goes that way, in order.
  if (cls == resp::CommandClass::pinned ||
      (cls == resp::CommandClass::shared &&
       (pin_requested_ || pin_broken_ || resp3_ || session_))) {
    if (select_in_multi_) note_transaction_end(name());
    return route_pinned(bytes, name());
  }
  switch (cls) {
    case resp::CommandClass::shared:
      return dispatch_shared(self, bytes);
    case resp::CommandClass::pinned:
    case resp::CommandClass::pubsub:
      break;
    case resp::CommandClass::stateful:
      // MONITOR: a feed on a dedicated connection in relay mode (client_session_pubsub.cpp;
      // a RESP2 subscriber gets Redis's refusal there). Not inside MULTI.
      if (name() == "MONITOR") {
        if (monitor_) return false;  // Redis answers a repeated MONITOR with nothing
        if (pin_broken_) return route_pinned(bytes, name());
        if (!in_multi_) return route_relay(bytes, request, name());
        refuse(resp::ErrorCode::not_supported, resp::monitor_in_transaction_error());
        return false;
      }
      if (name() == "CLIENT" && !relay_) {
        if (tracking_family(bytes, request)) return route_tracking(bytes, request);
        // Session mode: the client's own connection carries CLIENT's state (LIST, INFO,
        // KILL, PAUSE, ...) as Redis does.
        if (session_) return route_pinned(bytes, name());
      }
      refuse(resp::ErrorCode::not_supported, resp::not_supported_error(name()));
      return false;
    case resp::CommandClass::denied:
      refuse(resp::ErrorCode::denied, resp::replication_denied_error(name()));
      return false;
    case resp::CommandClass::local:
      if (name() == "SELECT") return select_db(bytes, request);
      if (name() == "AUTH" || name() == "HELLO") {
        return answer_auth_or_hello(self, bytes, request, name());
      }
      if (name() == "CLIENT" && (in_multi_ || pin_broken_)) {
        // Redis would queue it; the proxy answers CLIENT itself and cannot.
        if (pin_broken_) return route_pinned(bytes, name());
        refuse(resp::ErrorCode::not_supported, resp::not_supported_in_multi_error(name()));
        return false;
      }
      return answer_local(bytes, request, name());
    case resp::CommandClass::inspect:
      break;
  }
  return false;
}

bool ClientSession::dispatch_shared(const std::shared_ptr<upstream::ReplySink>& self,
                                    std::string_view bytes) {
  const auto slot = open_slot(true);
  ++pool_outstanding_;
  outstanding_db_ = db_;
  pool().dispatch(self, slot, bytes);
  return true;
}

// QUIT, RESET, CLIENT SETNAME / GETNAME / ID / NO-EVICT / REPLY: the proxy's own answers,
// as Redis words them.
bool ClientSession::answer_local(std::string_view bytes, const resp::Request& request,
                                 std::string_view name) {
  if (name == "QUIT") {  // Redis answers +OK and closes once the reply is written
    reply_local("+OK\r\n");
    close_after_flush_ = true;
    metrics_.closed(metrics::CloseReason::quit);
    return false;
  }
  if (name == "RESET") {
    // A dedicated connection (or a transaction whose connection was lost) ends its state
    // on Redis too, in order with the commands before it.
    if (pin_requested_ || pin_broken_) return forward_reset(bytes);
    reset_client_state();
    watching_ = false;  // a WATCH lost with its connection ends here too
    watch_lost_ = false;
    multi_refused_ = false;
    reset_auth_and_protocol();
    reply_local("+RESET\r\n");
    return false;
  }
  // CLIENT SETNAME name | GETNAME | ID | NO-EVICT on|off | REPLY on|off|skip
  resp::ArgIterator args(bytes, request);
  std::string scratch;
  std::string_view arg;
  std::vector<std::string> argv;
  while (argv.size() < 4 && args.next(arg, scratch))
    argv.emplace_back(arg);
  std::string sub = argv.size() > 1 ? argv[1] : std::string();
  for (char& c : sub)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string value = argv.size() > 2 ? argv[2] : std::string();
  for (char& c : value)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (sub == "ID") {  // the proxy's own id for this client, unique in the process
    reply_local(argv.size() != 2 ? resp::wrong_arity_error("client|id")
                                 : ":" + std::to_string(client_id_) + "\r\n");
    return false;
  }
  if (sub == "NO-EVICT") {
    // The client's commands travel on the proxy's upstream connections, which are never
    // this client's alone; accepted as Redis accepts it, with nothing to change.
    if (argv.size() != 3) {
      reply_local(resp::wrong_arity_error("client|no-evict"));
    } else {
      reply_local(value == "ON" || value == "OFF" ? "+OK\r\n" : resp::syntax_error());
    }
    return false;
  }
  if (sub == "REPLY") {  // as Redis: OFF and SKIP are not answered, ON is
    if (argv.size() != 3) {
      reply_local(resp::wrong_arity_error("client|reply"));
    } else if (value == "ON") {
      reply_off_ = false;
      silence_ = false;
      reply_local("+OK\r\n");
    } else if (value == "OFF" || value == "SKIP") {
      (value == "OFF" ? reply_off_ : skip_next_reply_) = true;
      silence_ = true;
      reply_local("+OK\r\n");
    } else {
      reply_local(resp::syntax_error());
    }
    return false;
  }
  if (sub == "GETNAME") {
    if (argv.size() != 2) {
      reply_local("-ERR wrong number of arguments for 'client|getname' command\r\n");
    } else if (client_name_.empty()) {
      reply_local(resp3_ ? "_\r\n" : "$-1\r\n");
    } else {
      reply_local("$" + std::to_string(client_name_.size()) + "\r\n" + client_name_ + "\r\n");
    }
    return false;
  }
  if (argv.size() != 3) {
    reply_local("-ERR wrong number of arguments for 'client|setname' command\r\n");
    return false;
  }
  const std::string& wanted = argv[2];
  if (!valid_client_name(wanted)) {
    reply_local(resp::client_name_error());
    return false;
  }
  client_name_ = wanted;
  reply_local("+OK\r\n");
  return false;
}

bool ClientSession::route_pinned(std::string_view bytes, std::string_view name) {
  const auto slot = open_slot();
  if (pin_broken_) {
    answer_broken_transaction(slot, name);
    return false;
  }
  // A refused command makes EXEC fail before a lost WATCH would, as in Redis.
  const bool exec_abort = multi_refused_ && in_multi_ && name == "EXEC";
  PinnedCommand command{slot,
                        std::string(bytes),
                        std::string(name),
                        in_multi_,
                        watching_,
                        resp3_,
                        !exec_abort && watch_lost_ && in_multi_ && name == "EXEC",
                        exec_abort,
                        tracking_,
                        session_ ? client_name_ : std::string()};
  if (!pin_requested_) {
    if (!pool().request_dedicated(weak_from_this())) {
      metrics_.limit_hit(metrics::Limit::max_dedicated);
      std::deque<PinnedCommand> one;
      one.push_back(std::move(command));
      settle_not_run(std::move(one), false,
                     resp::dedicated_full_error(settings_.service, pool().settings().max_dedicated),
                     resp::ErrorCode::dedicated_full);
      return false;
    }
    pin_requested_ = true;
  }
  track_pinned_state(name);
  pin_queue_.push_back(std::move(command));
  flush_pinned();
  return true;
}

// The transaction state of the dedicated connection, as the client's requests change it
// (conservatively: an EXEC or DISCARD that fails still ends it, as in Redis; without a
// MULTI they fail and leave the WATCH in place, as in Redis).
void ClientSession::track_pinned_state(std::string_view name) {
  if (name == "MULTI") {
    in_multi_ = true;
  } else if ((name == "EXEC" || name == "DISCARD") && in_multi_) {
    in_multi_ = false;
    watching_ = false;
    watch_lost_ = false;
    multi_refused_ = false;
  } else if (name == "WATCH" && !in_multi_) {
    watching_ = true;
  } else if (name == "UNWATCH" && !in_multi_) {
    watching_ = false;
    watch_lost_ = false;
  } else if (name == "RESET") {
    in_multi_ = false;
    watching_ = false;
    watch_lost_ = false;
    multi_refused_ = false;
  }
}

// A command of a MULTI whose connection was lost (pin_broken_): EXEC gets -EXECABORT, as
// does every command up to it; DISCARD and RESET end the transaction as Redis answers them.
void ClientSession::answer_broken_transaction(std::uint64_t slot, std::string_view name) {
  const bool ends = name == "EXEC" || name == "DISCARD" || name == "RESET";
  if (name == "RESET") {  // its effect on the client was applied when it was routed
    deliver(slot, "+RESET\r\n");
  } else if (name == "DISCARD") {
    deliver(slot, "+OK\r\n");  // what Redis answers; nothing was left to discard
  } else {
    metrics_.error_reply(resp::ErrorCode::execabort);
    deliver(slot, resp::transaction_lost_error(name));
  }
  if (ends) {
    in_multi_ = false;
    watching_ = false;
    watch_lost_ = false;
    multi_refused_ = false;
    pin_broken_ = false;
  }
}

// Writes the queued commands once the dedicated connection is there and nothing of the
// client's is still on a shared connection (which would otherwise run after them).
void ClientSession::flush_pinned() {
  if (!pinned_ || pool_outstanding_ > 0) return;
  const auto self = shared_from_this();
  while (!pin_queue_.empty() && pinned_->accepting()) {
    auto& c = pin_queue_.front();
    align_pinned_protocol(c);
    if (!c.multi_before) align_pinned_tracking(c);
    // WAIT counts the replicas that acknowledged the connection's last write. The
    // client's writes went over shared connections, so a PUBLISH (which Redis propagates
    // to replicas, and which nobody subscribes to) first makes this connection's last
    // write at least as recent as all of them; its reply is dropped.
    // (Not inside MULTI: queued there, it would add an element to EXEC's reply; Redis
    // answers WAIT in a transaction at once anyway.)
    if ((c.name == "WAIT" || c.name == "WAITAOF") && !c.multi_before) send_unanswered(kWaitMark);
    if (!c.multi_before) align_pinned_name(c);
    // DISCARD ends the transaction on the connection without running it; the client gets
    // what Redis answers for an EXEC whose watched keys changed (or that had an error).
    static const std::string discard = "*1\r\n$7\r\nDISCARD\r\n";
    const bool discarded = c.exec_nil || c.exec_abort;
    pinned_->enqueue(self, c.slot, discarded ? std::string_view(discard) : c.bytes);
    written_before_[c.slot] = {c.multi_before, c.watch_before, c.resp3_before, c.exec_nil,
                               c.exec_abort};
    if (c.name == "RESET") after_pinned_reset();
    pin_queue_.pop_front();
  }
  if (pin_queue_.empty()) flush_relay();
}

void ClientSession::maybe_unpin() {
  // A connection that is closing is not released: dedicated_lost() settles what it owes.
  if (!pinned_ || in_multi_ || watching_ || !pin_queue_.empty() || pinned_->inflight() > 0 ||
      !pinned_->accepting()) {
    return;
  }
  if (relay_) {  // a subscriber: until its last subscription's confirmation
    if (subs_.count() > 0 || monitor_ || !relay_queue_.empty() || !relay_sent_.empty()) return;
    relay_ = false;  // a RESP3 client too: its next command gets a new connection in RESP3
    confirmed_.clear();
    // Keys it tracked were read on this connection: their invalidations go with it.
    if (tracking_ && resp3_) emit_unsolicited(kInvalidateAll);
    if (closed_) return;
  } else if (resp3_ || session_ || tracking_) {
    return;  // kept: a RESP3 client, a session-mode one, one that tracks keys
  }
  pool().release_dedicated(std::exchange(pinned_, nullptr));
  pin_requested_ = false;
  // Session mode: the next connection is on its way (the state is replayed there).
  if (session_ && pool().request_dedicated(weak_from_this())) pin_requested_ = true;
}

void ClientSession::dedicated_ready(std::shared_ptr<upstream::Connection> connection) {
  if (closed_ || !pin_requested_ || pinned_) {
    pool().release_dedicated(connection);
    return;
  }
  pinned_ = std::move(connection);
  pinned_->forward_pushes_to(std::weak_ptr<upstream::RelaySink>(shared_from_this()));
  pinned_resp3_ = false;
  pinned_name_.clear();
  pinned_tracking_ = false;
  flush_pinned();
  maybe_unpin();
}

void ClientSession::dedicated_failed(const std::string& reason) {
  if (closed_ || !pin_requested_) return;
  pin_requested_ = false;
  auto queued = std::move(pin_queue_);
  pin_queue_.clear();
  const auto failure = resp::nomaster_error(
      settings_.service, util::format_duration(pool().settings().hold_timeout), reason);
  settle_not_run(std::move(queued), false, failure, resp::ErrorCode::nomaster);
  if (relay_ && !pin_requested_) resubscribe_failed(failure, resp::ErrorCode::nomaster);
}

void ClientSession::dedicated_lost(upstream::Connection& connection,
                                   std::vector<upstream::Unsent> unsent) {
  if (closed_ || pinned_.get() != &connection) return;  // released before: no news
  if (connection.relaying()) {
    relay_lost(std::move(unsent));
    return;
  }
  pinned_.reset();
  pin_requested_ = false;
  // Invalidations the lost connection would have sent are gone: the client forgets every
  // key it tracked (its CLIENT TRACKING is sent again on the next connection).
  if (tracking_ && resp3_) emit_unsolicited(kInvalidateAll);
  if (closed_) return;
  // Commands that never reached it go first, then those still queued: none of them ran.
  std::deque<PinnedCommand> waiting;
  for (auto& u : unsent) {
    if (u.sink.get() != static_cast<upstream::ReplySink*>(this)) continue;  // a HELLO to align
    resp::RequestScanner scanner;
    std::array<char, 64> upper{};
    std::string_view name;
    if (scanner.scan(u.bytes) == resp::ScanStatus::complete) {
      name = std::string_view(upper.data(),
                              resp::upper_name(scanner.request().name, upper.data(), upper.size()));
    }
    const auto before = written_before_[u.slot];
    written_before_.erase(u.slot);
    waiting.push_back(
        {u.slot, std::move(u.bytes),
         before.exec_nil || before.exec_abort ? std::string("EXEC") : std::string(name),
         before.multi, before.watch, before.resp3, before.exec_nil, before.exec_abort, tracking_,
         session_ ? client_name_ : std::string()});
  }
  written_before_.clear();  // the rest were answered -OUTCOMEUNKNOWN
  for (auto& c : pin_queue_)
    waiting.push_back(std::move(c));
  pin_queue_.clear();
  settle_not_run(std::move(waiting), true, {}, resp::ErrorCode::nomaster);
  // A SUBSCRIBE waited for the commands before it: it needs a connection too.
  if (relay_ && !pin_requested_) relay_lost({});
}

// Commands that did not run on a dedicated connection (it was lost, or none could be
// had), in order. Replayed from the transaction state just before the first of them:
// one inside a MULTI gets -EXECABORT up to the command that ends it, since a transaction
// cannot go on elsewhere; the rest are sent again on a new dedicated connection when
// `retry`, else answered `failure`, and a MULTI among those leaves its transaction broken
// the same way (never half-applied). A WATCH open (without MULTI) is lost with the
// connection: the commands go on, and the transaction's EXEC fails as a WATCH whose keys
// changed does (nil), so an optimistic-locking client simply retries.
void ClientSession::settle_not_run(std::deque<PinnedCommand> commands, bool retry,
                                   const std::string& failure, resp::ErrorCode code) {
  if (!commands.empty()) {
    in_multi_ = commands.front().multi_before;
    watching_ = commands.front().watch_before;
  }
  if (in_multi_) {
    pin_broken_ = true;
  } else if (watching_) {
    watch_lost_ = true;
  }
  std::deque<PinnedCommand> again;
  for (auto& c : commands) {
    if (!again.empty()) {
      again.push_back(std::move(c));
    } else if (in_multi_) {
      pin_broken_ = true;
      answer_broken_transaction(c.slot, c.name);
    } else if (retry) {
      again.push_back(std::move(c));
    } else {
      metrics_.error_reply(code);
      deliver(c.slot, failure);
      if (c.name == "MULTI") {
        in_multi_ = true;
        pin_broken_ = true;
      } else if (c.name == "WATCH") {
        watching_ = true;
        watch_lost_ = true;
      }
    }
  }
  if (again.empty()) return;
  for (auto& c : again) {  // from a clean state, as routed again
    c.multi_before = in_multi_;
    c.watch_before = watching_;
    c.exec_nil = !c.exec_abort && watch_lost_ && in_multi_ && c.name == "EXEC";
    track_pinned_state(c.name);
  }
  if (!pool().request_dedicated(weak_from_this())) {
    metrics_.limit_hit(metrics::Limit::max_dedicated);
    in_multi_ = false;
    watching_ = false;
    settle_not_run(std::move(again), false,
                   resp::dedicated_full_error(settings_.service, pool().settings().max_dedicated),
                   resp::ErrorCode::dedicated_full);
    return;
  }
  pin_requested_ = true;
  pin_queue_ = std::move(again);
}

void ClientSession::reply_local(std::string_view reply) {
  deliver(open_slot(), reply);
}

// RESET, as in Redis: CLIENT REPLY is on again, and RESET's own reply is written unless a
// CLIENT REPLY SKIP just before it skips it.
void ClientSession::end_reply_off() {
  reply_off_ = false;
  silence_ = skip_this_reply_;
}

std::uint64_t ClientSession::open_slot(bool via_pool) {
  auto& p = parked_.emplace_back();
  p.via_pool = via_pool;
  p.silent = silence_;
  return next_slot_++;
}

void ClientSession::refuse(resp::ErrorCode code, std::string reply) {
  metrics_.error_reply(code);
  if (in_multi_) multi_refused_ = true;  // as Redis flags a transaction it refused a command in
  reply_local(reply);
}

void ClientSession::protocol_failure(std::string reply, metrics::CloseReason reason,
                                     std::string_view why) {
  spdlog::warn("event=client_closed service={} reason={} peer={} detail=\"{}\"", settings_.service,
               metrics::close_reason_name(reason), peer(), why);
  metrics_.error_reply(resp::ErrorCode::protocol);
  metrics_.closed(reason);
  reply_local(reply);
  close_after_flush_ = true;
  write_wake_.cancel();
}

void ClientSession::deliver(std::uint64_t slot, std::string_view reply) {
  if (closed_) return;
  const auto index = slot - head_slot_;
  if (std::exchange(parked_[index].via_pool, false)) --pool_outstanding_;
  if (!written_before_.empty()) {
    auto it = written_before_.find(slot);
    if (it != written_before_.end()) {
      // The DISCARD sent for an EXEC whose WATCH was lost answers +OK: the client gets
      // the nil of a failed WATCH instead (the reply of a lost connection stays as it is).
      if (it->second.exec_nil && reply == "+OK\r\n") reply = it->second.resp3 ? "_\r\n" : "*-1\r\n";
      static const std::string aborted = resp::exec_after_errors_error();
      if (it->second.exec_abort && reply == "+OK\r\n") reply = aborted;
      written_before_.erase(it);
    }
  }
  if (!db_changes_.empty()) apply_db_change(slot, reply);
  if (!tracking_changes_.empty()) {
    const auto it = tracking_changes_.find(slot);
    if (it != tracking_changes_.end()) {
      // Refused (a bad option, a mode switch): the state before it stands, unless a later
      // CLIENT TRACKING changed it since.
      if (!reply.empty() && reply[0] == '-' && tracking_ == it->second.second) {
        tracking_ = it->second.first;
      }
      tracking_changes_.erase(it);
    }
  }
  if (reader_parked_ && pool_outstanding_ == 0 && !paused()) {
    reader_parked_ = false;  // commands after a SELECT may go on
    read_wake_.cancel();
  }
  if (parked_[index].silent) reply = {};  // CLIENT REPLY OFF or SKIP: nothing to write
  if (index != 0) {
    auto& p = parked_[index];
    p.ready = true;
    p.bytes.assign(reply);
    parked_bytes_ += reply.size();
  } else {
    out_.append(reply);
    parked_.pop_front();
    ++head_slot_;
    while (!parked_.empty() && parked_.front().ready) {
      out_.append(parked_.front().bytes);
      parked_bytes_ -= parked_.front().bytes.size();
      parked_.pop_front();
      ++head_slot_;
    }
    wake_writer();
  }
  if (close_if_over_output_limit()) return;
  if (pin_requested_) {
    flush_pinned();  // a shared reply may have been the last one owed
    maybe_unpin();
  }
}

void ClientSession::wake_writer() {
  if (writer_idle_) {
    writer_idle_ = false;  // one wake per batch of replies
    write_wake_.cancel();
  }
}

bool ClientSession::close_if_over_output_limit() {
  if (pending_out_bytes() <= settings_.output_hard_limit) return false;
  spdlog::warn("event=client_closed service={} reason=output_limit peer={} buffered={}",
               settings_.service, peer(), pending_out_bytes());
  metrics_.closed(metrics::CloseReason::output_limit);
  metrics_.limit_hit(metrics::Limit::output_hard_limit);
  close();
  return true;
}

asio::awaitable<void> ClientSession::write_loop(std::shared_ptr<ClientSession> self) {
  while (!closed_) {
    if (out_.empty()) {
      if (close_after_flush_ && parked_.empty()) {
        error_code ignored;
        socket_.shutdown(asio::socket_base::shutdown_send, ignored);
        close();
        break;
      }
      error_code ec;
      writer_idle_ = true;
      co_await write_wake_.async_wait(asio::redirect_error(use_awaitable, ec));
      writer_idle_ = false;
      continue;
    }
    writing_.swap(out_);
    writing_active_ = true;
    error_code ec;
    co_await asio::async_write(socket_, asio::buffer(writing_),
                               asio::redirect_error(use_awaitable, ec));
    writing_active_ = false;
    writing_.clear();
    if (writing_.capacity() > kKeepOutputCapacity) std::string().swap(writing_);
    if (out_.empty() && out_.capacity() > kKeepOutputCapacity) std::string().swap(out_);
    if (ec) {
      close();
      break;
    }
    if (reader_parked_ && !paused()) {
      reader_parked_ = false;
      read_wake_.cancel();
    }
    account();
  }
  (void)self;
}

}  // namespace tether::proxy
