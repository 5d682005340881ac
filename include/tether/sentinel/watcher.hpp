// Watcher: the Asio shell around the Resolver for one Sentinel-managed service.
//
//   per Sentinel: subscriber connection ──pub/sub events──┐
//                 command connection  ──SENTINEL MASTER──┤
//   probes: dial candidate, AUTH, ROLE ─────────────────┤
//   deadline timer ─── Tick ───────────────────────────┼──► Resolver::handle
//                                                        │
//   Resolver actions ──► Callbacks (retarget / hold / release / no_master), logs
//
// Everything a Sentinel says goes through the Resolver; the watcher only does I/O,
// reconnects each Sentinel with capped exponential backoff and polls every
// poll_interval (and at once on Requery). The callbacks are invoked on the watcher's
// executor; the app posts them on to every worker's pool.
//
// Discovery: each poll also asks SENTINEL SENTINELS <master>; a peer not yet watched
// (by address, or by run id learned with SENTINEL MYID on each link) gets a link of its
// own, up to kMaxSentinels in all. So a proxy configured with one Sentinel still hears a
// failover while that Sentinel is down. Discovered Sentinels are kept until restart.
//
// Threading: lives on one io_context (the control thread); not thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tether/metrics/metrics.hpp"
#include "tether/sentinel/resolver.hpp"
#include "tether/util/asio.hpp"
#include "tether/util/endpoint.hpp"

namespace tether::sentinel {

// Upper bound on the Sentinels one watcher links to (configured + discovered): a
// deployment has 3 or 5; the bound keeps a misbehaving peer list from growing links.
inline constexpr std::size_t kMaxSentinels = 16;

struct WatcherSettings {
  std::string service;
  std::string master_name;
  std::vector<util::Endpoint> sentinels;
  std::string sentinel_username;
  std::string sentinel_password;
  std::string upstream_username;  // for ROLE probes of a candidate master
  std::string upstream_password;
  std::chrono::milliseconds poll_interval{1000};
  std::chrono::milliseconds hold_bound = kDefaultHoldBound;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{2000};
};

// What /status and /health show of a Sentinel-managed service.
struct WatcherState {
  Phase phase = Phase::starting;
  std::optional<util::Endpoint> master;
  std::optional<Epoch> epoch;
  std::vector<Resolver::SentinelReport> sentinels;
};

struct WatcherCallbacks {
  // `failover_began`: when the hold for this failover started, or now when the switch
  // came first; none for the first master at start-up. For
  // redis_tether_failover_duration_seconds, which the pools observe at the first reply
  // from the new master.
  std::function<void(const util::Endpoint& master,
                     std::optional<std::chrono::steady_clock::time_point> failover_began)>
      retarget;
  std::function<void(const std::string& reason)> hold;
  std::function<void()> release;
  std::function<void(const std::string& reason)> no_master;
  // After every event the resolver handled (optional).
  std::function<void(WatcherState)> state;
};

class Watcher {
 public:
  // `metrics` (the service's; master, Sentinel and hold series) must outlive the watcher.
  Watcher(asio::any_io_executor ex, WatcherSettings settings, WatcherCallbacks callbacks,
          const metrics::ServiceMetrics& metrics);
  ~Watcher();
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  void start();
  void stop();

  // What a pool (on any thread) saw of `node`: it refused a command (-READONLY & co.), or
  // a serving connection to it died. Posted to the watcher's executor; the resolver
  // holds and re-queries the Sentinels if `node` is the current master.
  void upstream_refused(const util::Endpoint& node);
  void upstream_lost(const util::Endpoint& node);

  // A reload, from any thread (posted). Configured Sentinels no longer listed are dropped
  // (discovered ones stay), new ones are linked; changed Sentinel credentials reconnect
  // every link; poll_interval and hold_bound apply at once. The master stays as it is.
  void reconfigure(WatcherSettings settings);

 private:
  struct Link;

  void feed(const Event& event);
  void perform(const Action& action);
  void end_hold_metrics();
  asio::awaitable<void> run_link(std::shared_ptr<Link> link);
  asio::awaitable<void> poll_loop(std::shared_ptr<Link> link, std::uint64_t session);
  asio::awaitable<void> probe(util::Endpoint candidate);
  asio::awaitable<void> deadline_loop();
  void requery(const std::optional<SentinelId>& sentinel);
  void add_link(const util::Endpoint& ep);
  void drop_link(const SentinelId& id);
  void apply(WatcherSettings settings);
  asio::awaitable<void> discover(std::shared_ptr<Link> link);

  asio::any_io_executor ex_;
  WatcherSettings settings_;
  WatcherCallbacks callbacks_;
  const metrics::ServiceMetrics& metrics_;
  std::optional<std::chrono::steady_clock::time_point> hold_began_;  // a Hold is in force
  Resolver resolver_;
  asio::steady_timer deadline_;
  std::map<SentinelId, std::shared_ptr<Link>> links_;
  bool stopped_ = false;
  bool cap_noted_ = false;  // kMaxSentinels reached and logged
};

}  // namespace tether::sentinel
