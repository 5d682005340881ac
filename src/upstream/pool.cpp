#include "tether/upstream/pool.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "tether/resp/error_replies.hpp"
#include "tether/util/units.hpp"

namespace tether::upstream {
namespace {

bool has_target(const util::Endpoint& e) {
  return !e.host.empty() || !e.path.empty();
}
// For logs: Sentinel mode starts with no target until the first master is known.
std::string target_text(const util::Endpoint& e) {
  return has_target(e) ? e.to_string() : "none";
}

}  // namespace

using asio::use_awaitable;
using boost::system::error_code;

Pool::Pool(asio::any_io_executor ex, PoolSettings settings, const metrics::ServiceMetrics& metrics)
    : ex_(ex),
      settings_(std::move(settings)),
      metrics_(metrics),
      expire_timer_(ex),
      warm_timer_(ex),
      warm_backoff_(settings_.reconnect_min) {
  expire_timer_.expires_at(asio::steady_timer::time_point::max());
}

Pool::~Pool() {
  metrics_.held_commands->Decrement(gauge_held_commands_);
  metrics_.held_bytes->Decrement(gauge_held_bytes_);
}

void Pool::start() {
  slots_.assign(settings_.size, nullptr);
  loop_generation_.assign(settings_.size, 0);
  if (has_target(settings_.target)) {
    for (std::size_t i = 0; i < settings_.size; ++i) {
      spawn_maintain(i);
    }
  }
  fill_warm();
  asio::co_spawn(ex_, expire_loop(), asio::detached);
}

void Pool::set_unavailable_reason(std::string reason) {
  if (accepting_connections() == 0) last_error_ = std::move(reason);
}

void Pool::retarget(const util::Endpoint& target, RetargetMode mode,
                    std::optional<FailoverTimer> timer) {
  if (stopped_) return;
  failover_timer_ = std::move(timer);
  spdlog::info("event=upstream_retarget service={} from={} to={} generation={}", settings_.service,
               target_text(settings_.target), target.to_string(), generation_ + 1);
  last_error_ = "no connection to " + target.to_string() + " is ready yet";
  settings_.target = target;
  ++generation_;
  // A pause guards the old target only; the new generation takes the held commands once
  // its connections have confirmed ROLE.
  paused_ = false;
  if (mode == RetargetMode::abandon) end_dedicated(true);
  close_warm(0);  // connected to the old target
  for (auto& c : slots_) {
    if (!c) continue;
    draining_.push_back(c);
    if (mode == RetargetMode::abandon) {
      c->close();  // in flight: -OUTCOMEUNKNOWN; never written: sent to the new target
    } else {
      c->drain();
    }
    c.reset();
  }
  for (std::size_t i = 0; i < settings_.size; ++i) {
    spawn_maintain(i);
  }
  warm_backoff_ = settings_.reconnect_min;  // a new server: no failures to back off from
  fill_warm();
  wake_dedicated_waits();
}

void Pool::reconfigure(const PoolSettings& settings) {
  if (stopped_) return;
  const std::size_t old_size = settings_.size;
  const auto target = settings_.target;
  const auto service = settings_.service;
  const auto database = settings_.database;
  settings_ = settings;
  settings_.target = target;
  settings_.service = service;
  settings_.database = database;
  // Slots only grow: a slot beyond the size stays empty (its maintain() loop ends).
  if (settings_.size > slots_.size()) {
    slots_.resize(settings_.size);
    loop_generation_.resize(settings_.size, 0);
  }
  for (std::size_t i = settings_.size; i < old_size; ++i) {
    if (auto c = std::exchange(slots_[i], nullptr)) {
      draining_.push_back(c);
      c->drain();
    }
  }
  if (has_target(settings_.target)) {
    for (std::size_t i = 0; i < settings_.size; ++i) {
      if (loop_generation_[i] != generation_) spawn_maintain(i);
    }
  }
  close_warm(warm_wanted());
  fill_warm();
  spdlog::info("event=pool_reconfigured service={} size={} dedicated_warm={} generation={}",
               settings_.service, settings_.size, warm_wanted(), generation_);
  flush_hold();
}

void Pool::pause(std::string reason) {
  if (stopped_ || paused_) return;
  spdlog::info("event=pool_paused service={} upstream={} reason=\"{}\"", settings_.service,
               target_text(settings_.target), reason);
  paused_ = true;
  pause_reason_ = std::move(reason);
  // Nothing more may reach the current master, not even inside a client's transaction,
  // but what was written there still gets its real reply (during a planned failover the
  // old master answers it): dedicated connections drain, then close. A transaction left
  // open then ends in -EXECABORT; a client blocked past the pause waits until the
  // failover abandons the old master (retarget(abandon) closes them).
  end_dedicated(false);
}

void Pool::resume() {
  if (!paused_) return;
  paused_ = false;
  spdlog::info("event=pool_resumed service={} upstream={}", settings_.service,
               target_text(settings_.target));
  fill_warm();  // none was dialled during the pause
  wake_dedicated_waits();
  flush_hold();
}

void Pool::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& c : slots_) {
    if (c) c->close();
  }
  for (auto& c : draining_)
    c->close();
  for (auto& [conn, request] : dedicated_) {
    if (request->connection) request->connection->close();  // warm ones too
  }
  warm_.clear();
  warm_timer_.cancel();
  wake_dedicated_waits();  // they see stopped_ and answer their owners
  expire_timer_.cancel();
  expire_held(true);
}

std::size_t Pool::accepting_connections() const {
  return static_cast<std::size_t>(std::count_if(slots_.begin(), slots_.end(),
                                                [](const auto& c) { return c && c->accepting(); }));
}

// The slot's owner is recorded here, not when the coroutine first runs (a turn later), so
// that two spawns in one turn (a retarget and a reload) never give a slot two loops.
void Pool::spawn_maintain(std::size_t index) {
  loop_generation_[index] = generation_;
  asio::co_spawn(ex_, maintain(index, generation_), asio::detached);
}

asio::awaitable<void> Pool::maintain(std::size_t index, std::uint64_t generation) {
  auto backoff = settings_.reconnect_min;
  asio::steady_timer timer(ex_);
  // Ends when the target changes (a new loop takes the slot), a reload shrinks the pool,
  // or another loop took the slot.
  auto mine = [&] {
    return !stopped_ && generation == generation_ && index < settings_.size &&
           loop_generation_[index] == generation;
  };
  while (mine()) {
    auto conn =
        std::make_shared<Connection>(ex_, settings_, metrics_, *this, next_id_++, generation);
    slots_[index] = conn;
    bool was_ready = co_await conn->run();
    if (!was_ready) last_error_ = conn->last_error();
    if (generation == generation_ && slots_[index] == conn) slots_[index].reset();
    std::erase(draining_, conn);
    if (!mine()) break;
    if (was_ready) {
      backoff = settings_.reconnect_min;
      continue;  // a connection that served dies: redial at once
    }
    timer.expires_after(backoff);
    error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    backoff = std::min(backoff * 2, settings_.reconnect_max);
  }
  if (loop_generation_[index] == generation) loop_generation_[index] = 0;
}

Connection* Pool::pick(ReplySink& sink) {
  if (paused_) return nullptr;
  // A client's commands still in flight pin it to their connection: pipelined commands
  // must execute in the order the client sent them.
  if (sink.affinity_inflight > 0) {
    for (auto& c : slots_) {
      if (c && c->id() == sink.affinity_conn) return c->accepting() ? c.get() : nullptr;
    }
    // Its connection is draining (retarget): the client moves to the new generation.
  }
  // Join the batch being formed, if any: it leaves in the same write, so the upstream
  // (single-threaded Redis) reads many clients' commands per wakeup. Otherwise start one
  // on the connection with the fewest replies owed.
  Connection* best = nullptr;
  for (auto& c : slots_) {
    if (!c || !c->accepting()) continue;
    if (c->batch_forming()) return c.get();
    if (best == nullptr || c->inflight() < best->inflight()) best = c.get();
  }
  return best;
}

void Pool::send(Connection& c, const std::shared_ptr<ReplySink>& sink, std::uint64_t slot,
                std::string_view bytes) {
  if (sink->affinity_conn != c.id()) {
    sink->affinity_conn = c.id();
    sink->affinity_inflight = 0;
  }
  ++sink->affinity_inflight;
  c.enqueue(sink, slot, bytes);
}

void Pool::dispatch(const std::shared_ptr<ReplySink>& sink, std::uint64_t slot,
                    std::string_view bytes) {
  if (stopped_) {
    metrics_.error_reply(resp::ErrorCode::nomaster);
    sink->deliver(slot, resp::nomaster_error(settings_.service, "0ms", "redis-tether is stopping"));
    return;
  }
  if (hold_.empty()) {
    if (auto* c = pick(*sink)) {
      send(*c, sink, slot, bytes);
      return;
    }
  }
  if (hold_bytes_ + bytes.size() > settings_.hold_max_bytes) {
    metrics_.error_reply(resp::ErrorCode::holdfull);
    metrics_.limit_hit(metrics::Limit::hold_max_bytes);
    sink->deliver(
        slot, resp::holdfull_error(settings_.service, util::format_size(settings_.hold_max_bytes)));
    return;
  }
  hold(sink, slot, std::string(bytes),
       asio::steady_timer::clock_type::now() + settings_.hold_timeout, false);
  // With the hold non-empty a ready connection may exist only if the pinned one is busy
  // draining; flushing keeps order.
  flush_hold();
}

void Pool::hold(std::shared_ptr<ReplySink> sink, std::uint64_t slot, std::string bytes,
                asio::steady_timer::time_point deadline, bool front) {
  if (hold_.empty()) {
    spdlog::info("event=hold_started service={} upstream={} reason=\"{}\"", settings_.service,
                 target_text(settings_.target), no_upstream_reason());
  }
  hold_bytes_ += bytes.size();
  Held h{std::move(sink), slot, std::move(bytes), deadline};
  if (front) {
    hold_.push_front(std::move(h));
  } else {
    hold_.push_back(std::move(h));
  }
  if (hold_.size() == 1 || front) expire_timer_.cancel();  // re-arm on the new front
  update_hold_gauges();
}

void Pool::flush_hold() {
  if (hold_.empty()) return;
  std::size_t sent = 0;
  while (!hold_.empty()) {
    auto& h = hold_.front();
    auto* c = pick(*h.sink);
    if (!c) break;
    send(*c, h.sink, h.slot, h.bytes);
    hold_bytes_ -= h.bytes.size();
    hold_.pop_front();
    ++sent;
  }
  if (sent > 0 && hold_.empty()) {
    spdlog::info("event=hold_ended service={} upstream={} delivered={}", settings_.service,
                 target_text(settings_.target), sent);
  }
  update_hold_gauges();
}

asio::awaitable<void> Pool::expire_loop() {
  while (!stopped_) {
    expire_timer_.expires_at(hold_.empty() ? asio::steady_timer::time_point::max()
                                           : hold_.front().deadline);
    error_code ec;
    co_await expire_timer_.async_wait(asio::redirect_error(use_awaitable, ec));
    if (stopped_) break;
    if (!ec) expire_held(false);
  }
}

void Pool::expire_held(bool all) {
  const auto now = asio::steady_timer::clock_type::now();
  std::size_t expired = 0;
  std::string reply;
  while (!hold_.empty() && (all || hold_.front().deadline <= now)) {
    Held h = std::move(hold_.front());
    hold_.pop_front();
    hold_bytes_ -= h.bytes.size();
    if (reply.empty()) {
      reply = resp::nomaster_error(
          settings_.service, util::format_duration(settings_.hold_timeout),
          stopped_ ? std::string("redis-tether is stopping") : no_upstream_reason());
    }
    metrics_.error_reply(resp::ErrorCode::nomaster);
    metrics_.hold_expired->Increment();
    if (!stopped_) metrics_.limit_hit(metrics::Limit::hold_timeout);
    h.sink->deliver(h.slot, reply);
    ++expired;
  }
  if (expired > 0) {
    spdlog::warn("event=hold_expired service={} upstream={} commands={} reason=\"{}\"",
                 settings_.service, target_text(settings_.target), expired, no_upstream_reason());
  }
  update_hold_gauges();
}

void Pool::update_hold_gauges() {
  const double cmds = static_cast<double>(hold_.size());
  const double bytes = static_cast<double>(hold_bytes_);
  metrics_.held_commands->Increment(cmds - gauge_held_commands_);
  metrics_.held_bytes->Increment(bytes - gauge_held_bytes_);
  gauge_held_commands_ = cmds;
  gauge_held_bytes_ = bytes;
}

std::string Pool::no_upstream_reason() const {
  if (paused_) return pause_reason_;
  if (!last_error_.empty()) return last_error_;
  return "no connection to " + target_text(settings_.target) + " is ready yet";
}

void Pool::on_ready(Connection& c) {
  if (dedicated_ready_event(c)) return;
  if (c.generation() != generation_) {
    c.drain();
    return;
  }
  last_error_.clear();
  flush_hold();
}

void Pool::on_first_reply(Connection& c) {
  if (!failover_timer_ || c.generation() != generation_) return;
  if (!failover_timer_->observed->exchange(true)) {
    const std::chrono::duration<double> took =
        std::chrono::steady_clock::now() - failover_timer_->began;
    metrics_.failover_seconds->Observe(took.count());
  }
  failover_timer_.reset();
}

void Pool::on_lost(Connection& c, std::vector<Unsent> unsent) {
  if (dedicated_lost_event(c, unsent)) return;
  if (!c.last_error().empty()) last_error_ = c.last_error();
  if (c.generation() == generation_ && !stopped_) {
    if (c.refused() && feedback_.refused) feedback_.refused(settings_.target);
    if (c.lost() && feedback_.lost) feedback_.lost(settings_.target);
  }
  if (unsent.empty()) return;
  // These did not run (never reached a socket, or the node refused them): re-dispatch
  // them ahead of anything held later, keeping their order; their hold deadline starts
  // now.
  // Deadlines stay non-decreasing from the front, which the expiry loop relies on.
  auto deadline = asio::steady_timer::clock_type::now() + settings_.hold_timeout;
  if (!hold_.empty()) deadline = std::min(deadline, hold_.front().deadline);
  for (auto it = unsent.rbegin(); it != unsent.rend(); ++it) {
    hold(std::move(it->sink), it->slot, std::move(it->bytes), deadline, true);
  }
  // The dying connection is no longer accepting, so flush only reaches live ones.
  flush_hold();
}

}  // namespace tether::upstream
