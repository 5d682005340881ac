// StatusBoard: what GET /health and GET /status report, per service.
//
//   Watcher (control thread) ──update()──► StatusBoard ◄──health() / status_json()── admin
//   Metrics gauges (workers) ─────────────────────────┘   (client and upstream counts)
//
// A service has a verified master when some upstream connection of it has confirmed
// ROLE master (redis_tether_upstream_connections{state="ready"} > 0) and, in Sentinel
// mode, the watcher is following that master (no failover hold, no switch pending).
// Nothing secret is stored here: addresses, epochs and Sentinel link problems only.
//
// Threading: update() from the control thread, the readers from the admin thread; one
// mutex guards the Sentinel views, the gauges are atomics.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "tether/metrics/metrics.hpp"
#include "tether/sentinel/watcher.hpp"

namespace tether::app {

class StatusBoard {
 public:
  struct ServiceInfo {
    std::string name;
    std::string listen;
    std::string upstream;  // the fixed upstream, or "" in Sentinel mode
    std::string master_name;
  };

  StatusBoard(std::vector<ServiceInfo> services, const metrics::Metrics& metrics);

  void update(std::size_t service, sentinel::WatcherState state);
  // A reload changed a fixed upstream.
  void set_upstream(std::size_t service, std::string upstream);

  struct Health {
    bool ok = false;
    std::string text;  // one line per service: "main ok master=…" or "main down: why"
  };
  Health health() const;
  // {"services":[{"name":…,"mode":…,"master":…,"epoch":…,"phase":…,"sentinels":[…],
  //   "hold":{…},"clients":{…},"upstream_connections":{…}}]}
  std::string status_json() const;

 private:
  struct Entry {
    ServiceInfo info;
    std::optional<sentinel::WatcherState> watcher;  // Sentinel mode, once known
  };
  // Why the service has no verified master, or nullopt when it has one.
  std::optional<std::string> problem(std::size_t i, const Entry& e) const;
  double upstream(std::size_t i, metrics::UpstreamState s) const;

  mutable std::mutex mu_;
  std::vector<Entry> entries_;
  const metrics::Metrics& metrics_;
};

}  // namespace tether::app
