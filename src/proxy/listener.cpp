#include "tether/proxy/listener.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <prometheus/counter.h>
#include <spdlog/spdlog.h>

#include <vector>

#include "tether/resp/error_replies.hpp"

namespace tether::proxy {
namespace {

using asio::use_awaitable;
using boost::system::error_code;

asio::generic::stream_protocol protocol_for(int family) {
  return family == AF_UNIX ? asio::generic::stream_protocol(AF_UNIX, 0)
                           : asio::generic::stream_protocol(family, IPPROTO_TCP);
}

}  // namespace

Listener::Listener(asio::io_context& io, int fd, int family, const ListenerSettings& settings,
                   upstream::ServicePools& pools, const metrics::ServiceMetrics& metrics,
                   std::shared_ptr<std::atomic<std::size_t>> clients)
    : io_(io),
      acceptor_(io, protocol_for(family), fd),
      settings_(settings),
      pools_(pools),
      metrics_(metrics),
      clients_(std::move(clients)) {}

Listener::~Listener() {
  stop();
}

void Listener::start() {
  asio::co_spawn(io_, accept_loop(), asio::detached);
}

void Listener::stop() {
  if (stopped_) return;
  stopped_ = true;
  error_code ignored;
  acceptor_.close(ignored);
  auto sessions = std::move(sessions_);
  sessions_.clear();
  for (auto& [ptr, weak] : sessions) {
    if (auto s = weak.lock()) s->close();
  }
}

void Listener::drain() {
  if (stopped_ || draining_) return;
  draining_ = true;
  error_code ignored;
  acceptor_.close(ignored);
  // drain() may close a session at once (nothing owed), which erases it from sessions_.
  std::vector<std::shared_ptr<ClientSession>> live;
  for (auto& [ptr, weak] : sessions_) {
    if (auto s = weak.lock()) live.push_back(std::move(s));
  }
  for (auto& s : live)
    s->drain();
}

asio::awaitable<void> Listener::accept_loop() {
  asio::steady_timer backoff(io_);
  while (!stopped_) {
    error_code ec;
    auto socket = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
    if (stopped_ || draining_) break;
    if (ec) {
      // EMFILE and friends: wait a little instead of spinning on the error.
      spdlog::error("event=accept_failed service={} error=\"{}\"", settings_.service, ec.message());
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    if (clients_->fetch_add(1) >= settings_.max_clients) {
      clients_->fetch_sub(1);
      asio::co_spawn(io_, refuse(std::move(socket)), asio::detached);
      continue;
    }
    if (socket.local_endpoint(ec).protocol().family() != AF_UNIX) {
      int one = 1;
      ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    auto session =
        std::make_shared<ClientSession>(std::move(socket), settings_, pools_, metrics_, nullptr);
    ClientSession* key = session.get();
    sessions_.emplace(key, session);
    // Set after construction so the callback can name the session's registry entry.
    session->set_on_closed([this, key] {
      sessions_.erase(key);
      clients_->fetch_sub(1);
    });
    session->start();
  }
}

asio::awaitable<void> Listener::refuse(asio::generic::stream_protocol::socket socket) {
  spdlog::warn("event=client_refused service={} reason=max_clients limit={}", settings_.service,
               settings_.max_clients);
  metrics_.closed(metrics::CloseReason::max_clients);
  metrics_.limit_hit(metrics::Limit::max_clients);
  metrics_.error_reply(resp::ErrorCode::max_clients);
  const auto reply = resp::max_clients_error();
  error_code ec;
  co_await asio::async_write(socket, asio::buffer(reply), asio::redirect_error(use_awaitable, ec));
  socket.shutdown(asio::socket_base::shutdown_send, ec);
  socket.close(ec);
}

}  // namespace tether::proxy
