// Listener: accepts application connections for one service on one worker.
//
//   listening fd (dup of the service's socket) ──accept──► ClientSession (registered here)
//
// Enforces limits.max_clients across all workers of the service (a shared atomic
// count): past it the new connection gets Redis's "max number of clients reached" and is
// closed. stop() closes the acceptor and every session.
//
// Threading: lives on one worker's io_context; only `clients` is shared between workers.
#pragma once

#include <atomic>
#include <memory>
#include <unordered_map>

#include "tether/metrics/metrics.hpp"
#include "tether/proxy/client_session.hpp"
#include "tether/proxy/settings.hpp"
#include "tether/upstream/service_pools.hpp"
#include "tether/util/asio.hpp"

namespace tether::proxy {

class Listener {
 public:
  // Takes ownership of `fd`, a listening socket of address family `family`.
  Listener(asio::io_context& io, int fd, int family, const ListenerSettings& settings,
           upstream::ServicePools& pools, const metrics::ServiceMetrics& metrics,
           std::shared_ptr<std::atomic<std::size_t>> clients);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  void start();
  void stop();
  // Stops accepting and drains every session (ClientSession::drain); sessions() falls
  // to 0 as each finishes. stop() still closes what is left.
  void drain();
  std::size_t sessions() const { return sessions_.size(); }
  // A reload: new limits apply at once to every session (they read them from here);
  // protocol limits apply to clients accepted from now on.
  void update(const ListenerSettings& settings) { settings_ = settings; }

 private:
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> refuse(asio::generic::stream_protocol::socket socket);

  asio::io_context& io_;
  asio::basic_socket_acceptor<asio::generic::stream_protocol> acceptor_;
  ListenerSettings settings_;  // this worker's copy; sessions refer to it
  upstream::ServicePools& pools_;
  const metrics::ServiceMetrics& metrics_;
  std::shared_ptr<std::atomic<std::size_t>> clients_;
  std::unordered_map<ClientSession*, std::weak_ptr<ClientSession>> sessions_;
  bool stopped_ = false;
  bool draining_ = false;
};

}  // namespace tether::proxy
