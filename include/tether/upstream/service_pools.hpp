// ServicePools: one service's upstream pools on one worker, one per database in use.
//
//   ClientSession ──pool(db)──► ServicePools ─┬─ Pool db 0   (started with the worker)
//                                             ├─ Pool db 3   (created on the first SELECT 3)
//   watcher / reload ──retarget, pause, ...──►┘  ...         every call reaches every pool
//
// A pool for database n > 0 is created the first time a client selects n: its
// connections send `SELECT n` in their handshake (and so do its dedicated connections),
// it shares the service's settings and metrics, and it is born in the service's current
// state (target, pause, stop, feedback), so that from then on it follows failovers,
// reloads, drains and the stop exactly like database 0's pool. At most
// settings.databases pools exist (one per index); a pool lives until the worker stops,
// even with no client left (it keeps its pool.size connections open).
//
// Threading: lives on one worker's io_context; no locks.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tether/metrics/metrics.hpp"
#include "tether/upstream/pool.hpp"
#include "tether/upstream/settings.hpp"
#include "tether/util/asio.hpp"

namespace tether::upstream {

class ServicePools {
 public:
  // `settings.database` is ignored: each pool gets its own.
  ServicePools(asio::any_io_executor ex, PoolSettings settings,
               const metrics::ServiceMetrics& metrics);
  ~ServicePools();
  ServicePools(const ServicePools&) = delete;
  ServicePools& operator=(const ServicePools&) = delete;

  // Starts database 0's pool (Pool::start).
  void start();
  // The pool whose connections selected `db`, created (and started) on first use.
  // Precondition: db < settings().databases.
  Pool& pool(std::uint32_t db = 0);
  // The pool of `db` if one was created, else null.
  Pool* find(std::uint32_t db) const;
  // Pools created so far (database 0's included).
  std::size_t count() const;
  const PoolSettings& settings() const { return settings_; }
  const util::Endpoint& target() const { return settings_.target; }
  bool paused() const { return pause_reason_.has_value(); }

  // Pool's operations, applied to every pool and remembered for the pools created later.
  void reconfigure(const PoolSettings& settings);
  void retarget(const util::Endpoint& target, Pool::RetargetMode mode = Pool::RetargetMode::drain,
                std::optional<Pool::FailoverTimer> timer = std::nullopt);
  void pause(std::string reason);
  void resume();
  void set_feedback(const Pool::Feedback& feedback);
  void set_unavailable_reason(const std::string& reason);
  void stop();

 private:
  PoolSettings settings_for(std::uint32_t db) const;

  asio::any_io_executor ex_;
  PoolSettings settings_;  // target: the current one
  const metrics::ServiceMetrics& metrics_;
  // Index: database; null until first used. Grows only (a reload lowering `databases`
  // refuses new SELECTs past it; pools already in use stay).
  std::vector<std::unique_ptr<Pool>> pools_;
  Pool::Feedback feedback_;
  std::optional<std::string> pause_reason_;
  std::string unavailable_reason_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace tether::upstream
