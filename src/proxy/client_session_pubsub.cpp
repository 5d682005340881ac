// ClientSession, subscriber side: the SUBSCRIBE family over a dedicated connection in
// relay mode, and re-subscription after that connection is lost (see client_session.hpp).
#include <prometheus/counter.h>
#include <spdlog/spdlog.h>

#include <set>

#include "tether/proxy/client_session.hpp"
#include "tether/resp/command_table.hpp"
#include "tether/resp/error_replies.hpp"
#include "tether/resp/value.hpp"
#include "tether/util/units.hpp"

namespace tether::proxy {
namespace {

// A pub/sub message (RESP2 array or RESP3 push): never the answer to a command.
bool is_message(std::string_view frame) {
  if (frame.empty() || (frame[0] != '*' && frame[0] != '>')) return false;
  const auto eol = frame.find("\r\n");
  if (eol == std::string_view::npos) return false;
  const auto rest = frame.substr(eol + 2);
  return rest.starts_with("$7\r\nmessage\r\n") || rest.starts_with("$8\r\npmessage\r\n") ||
         rest.starts_with("$8\r\nsmessage\r\n") ||
         (frame[0] == '>' && rest.starts_with("$10\r\ninvalidate\r\n"));
}

// A line of MONITOR's feed: +<seconds>.<micros> [<db> <addr>] "cmd" ... (no command's
// reply is a status line of that shape).
bool is_monitor_line(std::string_view frame) {
  if (frame.size() < 4 || frame[0] != '+') return false;
  std::size_t i = 1;
  while (i < frame.size() && std::isdigit(static_cast<unsigned char>(frame[i])))
    ++i;
  if (i == 1 || i >= frame.size() || frame[i] != '.') return false;
  const auto micros = ++i;
  while (i < frame.size() && std::isdigit(static_cast<unsigned char>(frame[i])))
    ++i;
  return i > micros && frame.substr(i).starts_with(" [");
}

// Never a slot: marks re-subscriptions in the connection's FIFO.
constexpr std::uint64_t kNoSlot = ~std::uint64_t{0};

}  // namespace

// QUIT is answered here; AUTH and HELLO too (see route()); commands the proxy refuses
// (stateful, denied) stay refused.
// While subscribed, Redis refuses everything but the SUBSCRIBE family, PING, QUIT and
// RESET in its own words, so the other commands the proxy answers go there too; with no
// subscription left (confirmations still on their way) CLIENT SETNAME/GETNAME are
// answered here as usual, and the rest still go there, behind the commands before them.
bool ClientSession::relays(resp::CommandClass cls, std::string_view name) const {
  switch (cls) {
    case resp::CommandClass::shared:
    case resp::CommandClass::pinned:
    case resp::CommandClass::pubsub:
      return true;
    case resp::CommandClass::local:
      // AUTH and HELLO carry the client's own password: never sent to Redis (route()).
      if (name == "AUTH" || name == "HELLO") return false;
      // CLIENT goes to Redis only for a RESP2 subscriber, which Redis refuses in its words.
      return name != "QUIT" && ((subs_.count() > 0 && !resp3_) || name != "CLIENT");
    default:
      return false;
  }
}

bool ClientSession::route_relay(std::string_view bytes, const resp::Request& request,
                                std::string_view name) {
  const auto slot = open_slot();
  if (pin_broken_) {
    answer_broken_transaction(slot, name);
    return false;
  }
  Relayed r;
  r.slot = slot;
  r.bytes.assign(bytes);
  Subscriptions after = subs_;
  std::optional<Relayed> login;  // after a forwarded RESET
  if (name == "RESET" && monitor_) {
    // Only Redis's RESET ends MONITOR: forwarded, its +RESET swallowed and answered here;
    // the connection logs in again (AUTH, unanswered) for the commands pipelined after it
    // until it is released.
    r.reset = true;
    r.expected = 1;
    after.clear();
    if (auto auth = upstream_auth(); !auth.empty()) {
      login.emplace();
      login->bytes = std::move(auth);
      login->plain = true;
    }
  } else if (name == "RESET") {
    // Redis's RESET ends every subscription; forwarded as such it would also log the
    // connection out. Sent as the three UNSUBSCRIBEs, whose confirmations are swallowed.
    using K = SubscriptionKind;
    r.reset = true;
    // Then SELECT 0 (RESET's database, which the commands pipelined after it may still
    // meet on this connection).
    r.bytes = resp::encode_command({"UNSUBSCRIBE"}) + resp::encode_command({"PUNSUBSCRIBE"}) +
              resp::encode_command({"SUNSUBSCRIBE"}) + resp::encode_command({"SELECT", "0"});
    r.expected = std::max<std::size_t>(1, after.count(K::channel)) +
                 std::max<std::size_t>(1, after.count(K::pattern)) +
                 std::max<std::size_t>(1, after.count(K::shard)) + 1;
    if (resp3_) {  // RESET returns to RESP2, on the connection as for the client
      r.bytes += resp::encode_command({"HELLO", "2"});
      ++r.expected;
    }
    after.clear();
  } else if (auto command = Subscriptions::command(name)) {
    if (in_multi_) {  // Redis 7.0 would queue it; its EXEC would subscribe unseen
      metrics_.error_reply(resp::ErrorCode::not_supported);
      multi_refused_ = true;  // EXEC then fails, as for any command refused in MULTI
      deliver(slot, resp::subscribe_in_transaction_error(name));
      return false;
    }
    resp::ArgIterator it(bytes, request);
    std::string scratch;
    std::string_view arg;
    it.next(arg, scratch);  // the name
    while (it.next(arg, scratch))
      r.args.emplace_back(arg);
    r.command = command;
    r.expected = after.apply(*command, r.args);
  } else if (name == "MONITOR") {
    r.monitor = true;
  } else {
    r.plain = after.count() == 0 && !monitor_;
    r.ping = name == "PING";
  }
  if (!pin_requested_) {
    if (!pool().request_dedicated(weak_from_this())) {
      metrics_.limit_hit(metrics::Limit::max_dedicated);
      metrics_.error_reply(resp::ErrorCode::dedicated_full);
      deliver(slot, resp::dedicated_full_error(settings_.service, pool().settings().max_dedicated));
      return false;
    }
    pin_requested_ = true;
  }
  // RESET's effect on the client was applied before its slot opened (route()).
  if (r.plain || r.reset) track_pinned_state(name);
  if (r.monitor) monitor_ = true;
  if (r.reset) monitor_ = false;
  subs_ = std::move(after);
  relay_ = true;
  const bool reset = r.reset;
  relay_queue_.push_back(std::move(r));
  if (login) relay_queue_.push_back(std::move(*login));
  if (reset) {
    if (resp3_) pinned_resp3_ = false;
    reset_auth_and_protocol();
  }
  flush_pinned();
  return true;
}

// Called by flush_pinned once nothing of the client's is on a shared connection and its
// commands queued for the dedicated connection before the first SUBSCRIBE are written.
bool ClientSession::flush_relay() {
  if (relay_queue_.empty() || !pinned_->accepting()) return false;
  if (!pinned_->relaying()) {
    if (pinned_->inflight() > 0) return false;  // replies to the commands before it
    pinned_->relay_to(std::weak_ptr<upstream::RelaySink>(shared_from_this()));
    const auto& first = relay_queue_.front();
    if (!first.slot && !first.plain) metrics_.resubscribed->Increment();  // see relay_lost
    if (pinned_resp3_ != resp3_) {  // a new connection speaks RESP2: the client's protocol
      Relayed hello;
      hello.bytes = resp::encode_command({"HELLO", resp3_ ? "3" : "2"});
      hello.plain = true;
      relay_queue_.push_front(std::move(hello));
      pinned_resp3_ = resp3_;
    }
    if (!pinned_tracking_) {  // a new connection: the client's CLIENT TRACKING, after HELLO
      pinned_tracking_ = true;
      if (tracking_) {
        Relayed t;
        t.bytes = *tracking_;
        t.plain = true;
        const bool hello_first =
            !relay_queue_.empty() && !relay_queue_.front().slot && relay_queue_.front().plain;
        relay_queue_.insert(relay_queue_.begin() + (hello_first ? 1 : 0), std::move(t));
      }
    }
  }
  const auto self = shared_from_this();
  while (!relay_queue_.empty() && pinned_->accepting()) {
    auto& r = relay_queue_.front();
    pinned_->enqueue(self, r.slot.value_or(kNoSlot), r.bytes);
    relay_sent_.push_back(std::move(r));
    relay_queue_.pop_front();
  }
  return true;
}

void ClientSession::relayed(std::string_view frame) {
  if (closed_) return;
  // Passes a frame on for `r`: at once when its slot is the oldest open one, else kept
  // with its reply. True when it went out.
  auto pass = [this](Relayed& r, std::string_view f) {
    if (*r.slot == head_slot_ && r.reply.empty()) {
      emit_unsolicited(f);
      return true;
    }
    r.reply.append(f);
    return false;
  };
  // A plain command's RESP2 reply may look like a message (an array); a push never is a
  // reply, whatever is owed.
  const bool feed = is_message(frame) || (monitor_confirmed_ && is_monitor_line(frame));
  if (feed && (relay_sent_.empty() || !relay_sent_.front().plain || frame[0] == '>')) {
    // Before the replies of every command still waiting for its answer.
    for (auto& r : relay_sent_) {
      if (r.slot) {
        // Once RESET's first UNSUBSCRIBE ran, Redis's RESET would have sent nothing more.
        if (!r.reset || r.got == 0) pass(r, frame);
        return;
      }
    }
    emit_unsolicited(frame);
    return;
  }
  if (relay_sent_.empty()) {
    spdlog::warn("event=unexpected_reply service={} peer={} detail=\"a frame for no command\"",
                 settings_.service, peer());
    return;
  }
  auto& head = relay_sent_.front();
  ++head.got;
  if (head.monitor) {  // the feed starts with +OK; a refusal (e.g. -NOPERM) leaves none
    monitor_confirmed_ = frame == "+OK\r\n";
    monitor_ = monitor_confirmed_;
  }
  if (head.skip > 0) {
    --head.skip;  // passed on before the connection was lost
  } else if (head.slot && !head.reset) {
    const bool passed = pass(head, frame);
    if (closed_) return;  // the frame crossed output_hard_limit: relay_sent_ is gone
    if (passed) ++head.passed;
  }
  if (head.got == head.expected) complete_relayed();
}

void ClientSession::complete_relayed() {
  if (closed_ || relay_sent_.empty()) return;
  Relayed r = std::move(relay_sent_.front());
  relay_sent_.pop_front();
  if (r.reset) {
    confirmed_.clear();
    monitor_confirmed_ = false;
  } else if (r.command) {
    confirmed_.apply(*r.command, r.args);
  }
  if (r.slot) {
    if (r.reset) r.reply.append("+RESET\r\n");
    deliver(*r.slot, r.reply);
  } else {
    maybe_unpin();
  }
}

// A frame for the client now, ahead of every reply still owed.
void ClientSession::emit_unsolicited(std::string_view frame) {
  if (close_after_flush_) return;  // after QUIT Redis sends nothing more
  out_.append(frame);
  wake_writer();
  close_if_over_output_limit();
}

// The relay-mode connection died (a failover, or the master was lost). The subscriptions
// the client was confirmed are made again on a new connection, then what was not fully
// confirmed is sent again. Any other command that was written may have run:
// -OUTCOMEUNKNOWN, as on any connection.
void ClientSession::relay_lost(std::vector<upstream::Unsent> unsent) {
  pinned_.reset();
  pin_requested_ = false;
  // As for any tracking client (dedicated_lost): forget every key, tracking resumes.
  if (tracking_ && resp3_) emit_unsolicited(kInvalidateAll);
  if (closed_) return;
  std::set<std::uint64_t> never_written;
  for (const auto& u : unsent)
    never_written.insert(u.slot);
  std::deque<Relayed> again;
  for (auto& rs : confirmed_.resubscribe()) {
    Relayed r;
    r.bytes = std::move(rs.request);
    r.expected = rs.confirmations;
    again.push_back(std::move(r));
  }
  if (monitor_confirmed_) {  // the feed goes on from the new connection
    Relayed r;
    r.bytes = resp::encode_command({"MONITOR"});
    r.monitor = true;
    again.push_back(std::move(r));
  }
  const std::size_t resubscriptions = again.size();
  // Taken out of the members first: a deliver() below may close the session, which
  // clears them.
  auto sent = std::exchange(relay_sent_, {});
  auto queued = std::exchange(relay_queue_, {});
  auto take = [&](std::deque<Relayed>& from, bool written) {
    for (auto& r : from) {
      if (closed_) return;
      if (!r.slot) continue;  // a re-subscription: made again from confirmed_
      // Only the SUBSCRIBE family, RESET and PING are sent again once written: anything
      // else may have run (in RESP3 a subscriber's commands run; in RESP2 Redis refused
      // them, but the proxy cannot tell which reply was lost).
      const bool harmless = r.command || r.reset || r.ping || r.monitor;
      if (written && !harmless && !never_written.contains(*r.slot)) {
        metrics_.error_reply(resp::ErrorCode::outcome_unknown);
        deliver(*r.slot, resp::outcome_unknown_error(pool().target().to_string()));
        continue;
      }
      r.skip = r.passed;
      r.got = 0;
      r.reply.clear();  // messages kept back with it are lost with the connection
      again.push_back(std::move(r));
    }
    from.clear();
  };
  take(sent, true);
  take(queued, false);
  if (closed_) return;
  relay_queue_ = std::move(again);
  if (relay_queue_.empty()) {  // nothing to restore or answer: back on the shared path
    relay_ = false;
    return;
  }
  spdlog::info(
      "event=resubscribe service={} peer={} channels={} patterns={} shard_channels={} "
      "commands={}",
      settings_.service, peer(), confirmed_.count(SubscriptionKind::channel),
      confirmed_.count(SubscriptionKind::pattern), confirmed_.count(SubscriptionKind::shard),
      relay_queue_.size() - resubscriptions);
  if (!pool().request_dedicated(weak_from_this())) {
    metrics_.limit_hit(metrics::Limit::max_dedicated);
    resubscribe_failed(
        resp::dedicated_full_error(settings_.service, pool().settings().max_dedicated),
        resp::ErrorCode::dedicated_full);
    return;
  }
  pin_requested_ = true;
}

// No connection for a subscriber: each command still owed gets `reply`; a client that
// holds subscriptions is then closed (logged, counted), since it would otherwise wait
// for messages that no longer come. Client libraries see a lost connection and subscribe
// again on a new one.
void ClientSession::resubscribe_failed(const std::string& reply, resp::ErrorCode code) {
  auto owed = std::move(relay_sent_);
  for (auto& r : relay_queue_)
    owed.push_back(std::move(r));
  relay_sent_.clear();
  relay_queue_.clear();
  const bool subscribed =
      confirmed_.count() > 0 || subs_.count() > 0 || monitor_ || monitor_confirmed_;
  subs_.clear();
  confirmed_.clear();
  monitor_ = false;
  monitor_confirmed_ = false;
  relay_ = false;
  for (auto& r : owed) {
    if (!r.slot || closed_) continue;
    metrics_.error_reply(code);
    deliver(*r.slot, reply);
  }
  if (!subscribed || closed_) return;
  spdlog::warn("event=client_closed service={} reason=resubscribe_failed peer={} detail=\"{}\"",
               settings_.service, peer(), reply.substr(0, reply.size() - 2));
  metrics_.closed(metrics::CloseReason::resubscribe_failed);
  close_after_flush_ = true;
  if (reader_parked_) read_wake_.cancel();
  wake_writer();
}

}  // namespace tether::proxy
