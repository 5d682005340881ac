#include "tether/app/worker.hpp"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <system_error>

namespace tether::app {

Worker::Worker(std::size_t index, const std::vector<ServiceRuntime>& services,
               const metrics::Metrics& metrics)
    : index_(index), io_(1) {
  for (std::size_t i = 0; i < services.size(); ++i) {
    const auto& s = services[i];
    auto& m = metrics.service(i);
    pools_.push_back(std::make_unique<upstream::ServicePools>(io_.get_executor(), s.pool, m));
    int fd = ::dup(s.listen_fd);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "dup listening socket");
    listeners_.push_back(std::make_unique<proxy::Listener>(io_, fd, s.listen_family, s.listener,
                                                           *pools_.back(), m, s.clients));
  }
}

Worker::~Worker() {
  stop();
  join();
  // Everything was closed on the io_context's own thread; what remains are objects
  // whose coroutines have finished. Listeners go first: sessions reference pools.
  listeners_.clear();
  pools_.clear();
}

void Worker::start() {
  for (auto& p : pools_)
    p->start();
  for (auto& l : listeners_)
    l->start();
  thread_ = std::thread([this] {
    try {
      io_.run();
    } catch (const std::exception& e) {
      spdlog::critical("event=worker_failed worker={} error=\"{}\"", index_, e.what());
      std::abort();
    }
  });
}

void Worker::stop() {
  asio::post(io_, [this] {
    for (auto& l : listeners_)
      l->stop();
    for (auto& p : pools_)
      p->stop();
  });
}

void Worker::reconfigure(std::size_t index, const proxy::ListenerSettings& listener,
                         const upstream::PoolSettings& pool) {
  asio::post(io_, [this, index, listener, pool] {
    listeners_.at(index)->update(listener);
    auto& p = *pools_.at(index);
    p.reconfigure(pool);
    // Only a fixed upstream has a target in the settings; Sentinel mode leaves it empty.
    const bool fixed = !pool.target.host.empty() || !pool.target.path.empty();
    if (fixed && !(pool.target == p.target())) p.retarget(pool.target);
  });
}

void Worker::drain(std::chrono::milliseconds bound) {
  asio::post(io_, [this, bound] {
    for (auto& l : listeners_)
      l->drain();
    asio::co_spawn(io_, finish_drain(std::chrono::steady_clock::now() + bound), asio::detached);
  });
}

asio::awaitable<void> Worker::finish_drain(std::chrono::steady_clock::time_point deadline) {
  asio::steady_timer tick(io_);
  for (;;) {
    std::size_t left = 0;
    for (auto& l : listeners_)
      left += l->sessions();
    if (left == 0) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      spdlog::warn("event=drain_timeout worker={} clients={}", index_, left);
      break;
    }
    // Polled: sessions finish on their own schedule; 10 ms is well inside any bound.
    tick.expires_after(std::chrono::milliseconds(10));
    boost::system::error_code ec;
    co_await tick.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  for (auto& l : listeners_)
    l->stop();
  for (auto& p : pools_)
    p->stop();
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace tether::app
