// Pool: one service's shared upstream connections on one worker, the hold, and the
// clients' dedicated connections with a warm set kept ready for them.
//
//   dispatch(sink, slot, bytes)
//     ├─ a connection is accepting ──► Connection::enqueue (the client's own connection
//     │                                 while it has commands in flight there)
//     └─ none is ─────────────────────► hold_ (in order, bounded by hold.timeout and
//                                        hold.max_bytes) ──► flushed when one is ready
//
//   request_dedicated(owner) ──(next turn: obtain_dedicated)
//     ├─ a warm one is ready ──► handed to the owner ──► fill_warm() dials its replacement
//     └─ none is ──────────────► dialled for the owner (not while paused, with backoff,
//                                 until hold.timeout) ──► handed to the owner
//   warm_: up to dedicated_warm idle connections (dialled, ROLE master) to the current
//   target; one that dies idle is re-dialled after reconnect_min .. reconnect_max.
//
// Pausing: pause() holds every new command even while connections are ready (the
// failover has begun and nothing may reach the old master); resume() or retarget() ends
// it. Dedicated connections in use drain (Connection::drain: nothing new is written,
// replies owed still arrive, then they close and their owners ask again); no warm one is
// handed out and none is dialled until the pause ends.
//
// Retargeting: retarget(endpoint) bumps the generation. Connections of older
// generations take no new work and drain (replies still owed are delivered); new ones
// dial the new target. Commands arriving in between are held. Warm connections belong to
// the old target: they close, and new ones are dialled to the new target.
//
// Threading: lives on one worker's io_context; no locks.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tether/metrics/metrics.hpp"
#include "tether/upstream/connection.hpp"
#include "tether/upstream/reply_sink.hpp"
#include "tether/upstream/settings.hpp"
#include "tether/util/asio.hpp"

namespace tether::upstream {

// A client that asked Pool::request_dedicated for a connection of its own. Called on the
// pool's executor, never from within request_dedicated.
class DedicatedOwner {
 public:
  virtual ~DedicatedOwner() = default;
  // The connection is ready (ROLE said master; not during a failover hold) and the
  // owner's until release_dedicated().
  virtual void dedicated_ready(std::shared_ptr<Connection> connection) = 0;
  // None became ready within hold.timeout (or the pool stopped); `reason` says why.
  virtual void dedicated_failed(const std::string& reason) = 0;
  // The owner's connection died: commands in flight got -OUTCOMEUNKNOWN; `unsent` never
  // reached the socket (they did not run).
  virtual void dedicated_lost(Connection& connection, std::vector<Unsent> unsent) = 0;
};

class Pool final : public ConnectionEvents {
 public:
  Pool(asio::any_io_executor ex, PoolSettings settings, const metrics::ServiceMetrics& metrics);
  ~Pool() override;
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Starts dialling settings.size connections to settings.target; with no target (an
  // empty endpoint: Sentinel mode before the first master is known) it holds every
  // command until retarget().
  void start();
  enum class RetargetMode {
    // Current connections take no new work and deliver the replies still owed.
    drain,
    // The old target lost its mastership (a failover): a reply that arrives from it now
    // may come from a command it ran after the promotion, a write the new master never
    // gets (DESIGN promise 1). Its connections close at once; commands in flight get
    // -OUTCOMEUNKNOWN, commands never written go to the new target.
    abandon,
  };
  // redis_tether_failover_duration_seconds: from `began` to the first reply from the new
  // target; observed once per failover by whichever worker's pool gets it first (the
  // pools of one service on all workers share `observed`).
  struct FailoverTimer {
    std::chrono::steady_clock::time_point began;
    std::shared_ptr<std::atomic<bool>> observed;
  };
  // A reload: everything in `settings` but `service`, `database` and `target` (which
  // retarget() changes) takes effect. Connections read the timeouts and hold bounds
  // live; AUTH credentials and protocol limits apply to connections dialled from now on;
  // a larger size dials more connections, a smaller one drains the extra ones.
  void reconfigure(const PoolSettings& settings);
  // Sends later commands to `target`.
  void retarget(const util::Endpoint& target, RetargetMode mode = RetargetMode::drain,
                std::optional<FailoverTimer> timer = std::nullopt);
  // Stops giving new commands to the current connections (a failover has begun): they
  // are held, bounded as usual, while commands already in flight complete. Dedicated
  // connections in use drain the same way: what was written is answered, then they close
  // (DedicatedOwner::dedicated_lost) and their owners get new ones once the pause ends.
  // resume() releases the held commands to the current target; retarget() to the new one.
  void pause(std::string reason);
  void resume();
  // What the pool learns about its current target that the Sentinel watcher wants to
  // know at once (DESIGN: "an upstream -READONLY or a lost master connection triggers an
  // immediate re-query"). Invoked on the pool's executor; unset members are skipped.
  struct Feedback {
    std::function<void(const util::Endpoint&)> refused;  // a command got -READONLY & co.
    std::function<void(const util::Endpoint&)> lost;     // a serving connection died
  };
  void set_feedback(Feedback feedback) { feedback_ = std::move(feedback); }
  // Why no upstream is available, for -NOMASTER replies while none is (e.g. what the
  // Sentinels said); replaced by connection errors as they happen.
  void set_unavailable_reason(std::string reason);
  bool paused() const { return paused_; }
  // Closes everything; held commands and in-flight ones get their error replies.
  void stop();

  // Dedicated connections: for one client's own state (MULTI ... EXEC, WATCH, a
  // blocking command, subscriptions in relay mode). A ready warm one if there is one,
  // else one dialled to the current target; never while paused; confirmed with ROLE;
  // handed over through `owner` (held weakly), never from within this call. A pause
  // drains the ones in use, a retarget(abandon) closes them. False, and nothing is
  // called, when settings.max_dedicated are in use or on their way (warm ones do not
  // count until handed over).
  bool request_dedicated(std::weak_ptr<DedicatedOwner> owner);
  // The owner is done with it: closed (its state was the client's), not reused.
  void release_dedicated(const std::shared_ptr<Connection>& connection);
  std::size_t dedicated_in_use() const { return dedicated_count_; }
  // Warm connections ready to be handed over (dialled, ROLE master, idle).
  std::size_t dedicated_warm_ready() const;
  const PoolSettings& settings() const { return settings_; }

  // Sends or holds one complete request for `sink`. The reply arrives through
  // sink->deliver(slot, ...), always asynchronously with respect to this call's caller
  // only when sent; an immediate refusal (-HOLDFULL) is delivered before it returns.
  void dispatch(const std::shared_ptr<ReplySink>& sink, std::uint64_t slot, std::string_view bytes);

  std::uint64_t generation() const { return generation_; }
  const util::Endpoint& target() const { return settings_.target; }
  std::size_t held_commands() const { return hold_.size(); }
  std::uint64_t held_bytes() const { return hold_bytes_; }
  // Connections of the current generation that can take work.
  std::size_t accepting_connections() const;

  // ConnectionEvents
  void on_ready(Connection& c) override;
  void on_first_reply(Connection& c) override;
  void on_lost(Connection& c, std::vector<Unsent> unsent) override;

 private:
  struct Held {
    std::shared_ptr<ReplySink> sink;
    std::uint64_t slot;
    std::string bytes;
    asio::steady_timer::time_point deadline;
  };

  struct DedicatedRequest {
    std::weak_ptr<DedicatedOwner> owner;
    std::shared_ptr<Connection> connection;  // the current attempt, then the owner's
    bool handed = false;
    bool warm = false;  // a warm_ entry: no owner yet
  };
  asio::awaitable<void> obtain_dedicated(std::shared_ptr<DedicatedRequest> request);
  // Ends the dedicated connections in use: drained (a pause) or closed at once (abandon).
  void end_dedicated(bool at_once);
  // Dedicated-connection halves of on_ready / on_lost; false when `c` is not one.
  bool dedicated_ready_event(Connection& c);
  bool dedicated_lost_event(Connection& c, std::vector<Unsent>& unsent);
  // The warm set (pool_dedicated.cpp).
  std::size_t warm_wanted() const;
  bool hand_over_warm(const std::shared_ptr<DedicatedRequest>& request);
  void fill_warm();
  void close_warm(std::size_t keep);
  void refill_warm_later();
  asio::awaitable<void> run_warm(std::shared_ptr<DedicatedRequest> entry);
  void spawn_maintain(std::size_t index);
  asio::awaitable<void> maintain(std::size_t index, std::uint64_t generation);
  asio::awaitable<void> expire_loop();
  Connection* pick(ReplySink& sink);
  void send(Connection& c, const std::shared_ptr<ReplySink>& sink, std::uint64_t slot,
            std::string_view bytes);
  void hold(std::shared_ptr<ReplySink> sink, std::uint64_t slot, std::string bytes,
            asio::steady_timer::time_point deadline, bool front);
  void flush_hold();
  void expire_held(bool all);
  void update_hold_gauges();
  std::string no_upstream_reason() const;
  // False in Sentinel mode until the first master is known.
  bool targeted() const { return !settings_.target.host.empty() || !settings_.target.path.empty(); }

  asio::any_io_executor ex_;
  PoolSettings settings_;
  const metrics::ServiceMetrics& metrics_;
  std::uint64_t generation_ = 1;
  std::uint64_t next_id_ = 1;
  bool stopped_ = false;
  bool paused_ = false;
  std::string pause_reason_;
  // Current generation, one per pool slot (null while between attempts).
  std::vector<std::shared_ptr<Connection>> slots_;
  // Per slot, the generation whose maintain() loop owns it (0: none).
  std::vector<std::uint64_t> loop_generation_;
  // Older generations still owed replies.
  std::vector<std::shared_ptr<Connection>> draining_;
  std::deque<Held> hold_;
  std::uint64_t hold_bytes_ = 0;
  double gauge_held_commands_ = 0;
  double gauge_held_bytes_ = 0;
  asio::steady_timer expire_timer_;
  std::string last_error_;
  Feedback feedback_;
  // Dedicated connections being dialled or in use, by connection.
  std::map<const Connection*, std::shared_ptr<DedicatedRequest>> dedicated_;
  std::size_t dedicated_count_ = 0;  // requests alive (dialling, waiting or in use)
  // Warm connections of the current generation, dialling or ready, not yet handed over.
  std::vector<std::shared_ptr<DedicatedRequest>> warm_;
  // Re-dials warm connections that died idle or failed to dial, after warm_backoff_.
  asio::steady_timer warm_timer_;
  bool warm_timer_armed_ = false;
  std::chrono::milliseconds warm_backoff_;
  // The backoff timers of obtain_dedicated() loops waiting to try again: cut short when a
  // try may now succeed (a retarget, a resume, a warm connection ready), so a client does
  // not wait out a backoff grown while the master was down.
  std::set<asio::steady_timer*> dedicated_waits_;
  void wake_dedicated_waits();
  std::optional<FailoverTimer> failover_timer_;  // until the new target's first reply
};

}  // namespace tether::upstream
