// Metrics: every metric redis-tether exports, declared once, handles resolved at start-up.
//
//   Metrics (one per process) ──► ServiceMetrics (one per service: plain pointers to
//                                 prometheus handles, bumped on the data path)
//                              └─► serialize() for GET /metrics (Prometheus text format)
//
// Labels are bounded: service, reason, code, state, direction — never per key or client.
// Threading: handles are prometheus-cpp atomics, safe from every worker; the data path
// bumps them per batch, not per byte. Family::Add is only called in the constructor.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "tether/resp/error_replies.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace tether::metrics {

// Why the proxy closed a client connection.
enum class CloseReason : std::uint8_t {
  protocol_error,      // malformed request (after the error reply)
  request_too_large,   // one request above limits.max_request_bytes
  output_limit,        // buffered replies above limits.output_hard_limit
  max_clients,         // limits.max_clients reached at accept
  quit,                // the client sent QUIT
  resubscribe_failed,  // a subscriber's subscriptions could not be made again (failover)
  kCount,
};
std::string_view close_reason_name(CloseReason r);

// A configured limit that was reached (redis_tether_limit_hits_total{limit}).
enum class Limit : std::uint8_t {
  max_clients,        // a connection refused
  max_request_bytes,  // a client closed for one oversized request
  output_hard_limit,  // a client closed for unread replies
  max_pending,        // a client's reading paused (pipelined requests)
  output_soft_limit,  // a client's reading paused (buffered replies)
  hold_max_bytes,     // a command answered -HOLDFULL
  hold_timeout,       // a held command answered -NOMASTER
  max_dedicated,      // a command answered -DEDICATEDFULL
  kCount,
};
std::string_view limit_name(Limit l);

enum class UpstreamState : std::uint8_t { connecting, ready, draining, kCount };
std::string_view upstream_state_name(UpstreamState s);

// redis_tether_master_info{service,address,epoch} = 1 for the current master only: the
// one series whose labels change at run time (one per master switch, the old one removed).
class MasterInfo {
 public:
  MasterInfo(prometheus::Family<prometheus::Gauge>& family, std::string service);
  // Thread-safe. `epoch` is the config-epoch, or "" when not known exactly.
  void set(const std::string& address, const std::string& epoch);

 private:
  std::mutex mu_;
  prometheus::Family<prometheus::Gauge>& family_;
  std::string service_;
  prometheus::Gauge* current_ = nullptr;
};

struct ServiceMetrics {
  prometheus::Gauge* client_connections = nullptr;
  prometheus::Counter* client_accepted = nullptr;
  std::array<prometheus::Counter*, static_cast<std::size_t>(CloseReason::kCount)> client_closed{};
  prometheus::Gauge* buffer_in_bytes = nullptr;
  prometheus::Gauge* buffer_out_bytes = nullptr;
  prometheus::Gauge* reads_paused = nullptr;
  prometheus::Counter* commands_forwarded = nullptr;
  std::array<prometheus::Counter*, static_cast<std::size_t>(resp::ErrorCode::kCount)>
      error_replies{};
  std::array<prometheus::Gauge*, static_cast<std::size_t>(UpstreamState::kCount)> upstream{};
  prometheus::Counter* upstream_connect_failures = nullptr;
  prometheus::Gauge* held_commands = nullptr;
  prometheus::Gauge* held_bytes = nullptr;
  prometheus::Counter* hold_expired = nullptr;
  std::array<prometheus::Counter*, static_cast<std::size_t>(Limit::kCount)> limit_hits{};
  // Refused by a node that is no longer a serving master (-READONLY & co.), sent again.
  prometheus::Counter* commands_resent = nullptr;
  // Subscribers whose dedicated connection was lost, by outcome: subscribed again on a
  // new connection, or closed (resubscribe_failed).
  prometheus::Counter* resubscribed = nullptr;
  // Sentinel mode; they stay 0 (and master_info absent) for a fixed upstream.
  prometheus::Counter* master_switches = nullptr;
  prometheus::Gauge* sentinels_reachable = nullptr;
  prometheus::Gauge* failover_hold_active = nullptr;
  prometheus::Histogram* failover_hold_seconds = nullptr;
  prometheus::Histogram* failover_seconds = nullptr;
  MasterInfo* master_info = nullptr;

  void closed(CloseReason r) const;
  void limit_hit(Limit l) const;
  void error_reply(resp::ErrorCode c) const;
  void upstream_state(UpstreamState s, double delta) const;
};

class Metrics {
 public:
  // Registers every family and resolves the handles for each named service.
  explicit Metrics(const std::vector<std::string>& services);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Handles for the service at `index` in the constructor's list; lives as long as this.
  const ServiceMetrics& service(std::size_t index) const { return services_.at(index); }

  // The Prometheus text exposition of everything registered. Thread-safe.
  std::string serialize() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::vector<ServiceMetrics> services_;
  std::vector<std::unique_ptr<MasterInfo>> master_infos_;
};

}  // namespace tether::metrics
