// AdminServer: the operator's HTTP port (loopback by default).
//
//   GET /metrics ──► Metrics::serialize() (Prometheus text format 0.0.4)
//   GET /health  ──► 200 "ok" lines while every service has a verified master, else 503
//                    with one line per service saying why (StatusBoard::health)
//   GET /status  ──► JSON per service: master, epoch, phase, Sentinels, hold, clients
//
// A deliberately small HTTP/1.0-style server: one request per connection, request head
// bounded (kMaxRequestHead), responses closed after writing. Runs on its own thread and
// io_context so a slow scraper never touches the data path.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "tether/app/status_board.hpp"
#include "tether/metrics/metrics.hpp"
#include "tether/util/asio.hpp"
#include "tether/util/endpoint.hpp"

namespace tether::app {

class AdminServer {
 public:
  // Binds at construction (throws std::runtime_error naming the address on failure).
  AdminServer(const util::Endpoint& listen, const metrics::Metrics& metrics,
              const StatusBoard& status);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  void start();
  void stop();

 private:
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(asio::ip::tcp::socket socket);

  const metrics::Metrics& metrics_;
  const StatusBoard& status_;
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
};

}  // namespace tether::app
