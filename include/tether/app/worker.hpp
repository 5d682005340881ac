// Worker: one thread, one io_context, and per service its own upstream pool and
// listener. Nothing on the data path is shared between workers.
//
//   Worker ─┬─ io_context (run on thread_)
//           ├─ ServicePools[service]  a Pool (upstream connections + hold) per database
//           └─ Listener[service]  accepts on a dup() of the service's listening socket
//
// Threading: construct and start() from the main thread; stop() may be called from any
// thread (it posts); join() from the main thread.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "tether/metrics/metrics.hpp"
#include "tether/proxy/listener.hpp"
#include "tether/proxy/settings.hpp"
#include "tether/upstream/service_pools.hpp"
#include "tether/upstream/settings.hpp"
#include "tether/util/asio.hpp"

namespace tether::app {

// Everything a worker needs about one service; owned by the caller, outlives workers.
struct ServiceRuntime {
  upstream::PoolSettings pool;
  proxy::ListenerSettings listener;
  int listen_fd = -1;
  int listen_family = 0;
  std::shared_ptr<std::atomic<std::size_t>> clients = std::make_shared<std::atomic<std::size_t>>(0);
};

class Worker {
 public:
  Worker(std::size_t index, const std::vector<ServiceRuntime>& services,
         const metrics::Metrics& metrics);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();
  asio::any_io_executor executor() { return io_.get_executor(); }
  // The pools of the service at `index`; use only on this worker's executor.
  upstream::ServicePools& pool(std::size_t index) { return *pools_.at(index); }
  // Stops accepting, closes clients and upstreams; the thread ends when all is closed.
  void stop();
  // A reload of service `index` (any thread: posted): new client limits for the listener,
  // new pool settings, and for a fixed upstream that changed, the new target (the old
  // connections drain).
  void reconfigure(std::size_t index, const proxy::ListenerSettings& listener,
                   const upstream::PoolSettings& pool);
  // Graceful stop: stops accepting, lets every client receive the replies owed for the
  // requests already read (ClientSession::drain), then stop() once all clients are gone
  // or `bound` has passed (what is left is closed, logged as event=drain_timeout).
  void drain(std::chrono::milliseconds bound);
  void join();

 private:
  asio::awaitable<void> finish_drain(std::chrono::steady_clock::time_point deadline);

  std::size_t index_;
  asio::io_context io_;
  std::vector<std::unique_ptr<upstream::ServicePools>> pools_;
  std::vector<std::unique_ptr<proxy::Listener>> listeners_;
  std::thread thread_;
};

}  // namespace tether::app
