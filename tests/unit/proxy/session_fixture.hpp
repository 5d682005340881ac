// Test fixture for ClientSession: one session on one end of a socketpair, the test
// playing the client on the other end, with a real pool to a real redis-server.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <functional>
#include <memory>
#include <string>

#include "redis_process.hpp"
#include "tether/proxy/client_session.hpp"

namespace tether::testing {

using namespace std::chrono_literals;

// One session on one end of a socketpair; the test plays the client on the other end.
struct SessionFixture {
  // Declared first so that it outlives the io_context: handlers and coroutine frames the
  // io_context destroys (a test that failed before stopping its pool) still update it.
  tether::metrics::Metrics metrics{{"test"}};
  tether::asio::io_context io;
  tether::proxy::ListenerSettings settings;
  std::unique_ptr<tether::upstream::ServicePools> pools;
  tether::upstream::Pool* pool = nullptr;  // database 0's
  std::shared_ptr<tether::proxy::ClientSession> session;
  int client = -1;
  bool closed = false;

  explicit SessionFixture(std::uint16_t port,
                          std::function<void(tether::upstream::PoolSettings&)> tweak = nullptr) {
    settings.service = "test";
    tether::upstream::PoolSettings ps;
    ps.service = "test";
    ps.target = *tether::util::parse_endpoint("127.0.0.1:" + std::to_string(port));
    ps.reconnect_min = 20ms;
    ps.reconnect_max = 50ms;
    if (tweak) tweak(ps);
    pools =
        std::make_unique<tether::upstream::ServicePools>(io.get_executor(), ps, metrics.service(0));
    pool = &pools->pool(0);
    pools->start();
  }

  void open() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    client = fds[0];
    ::fcntl(client, F_SETFL, O_NONBLOCK);
    tether::proxy::ClientSession::Socket s(io, tether::asio::generic::stream_protocol(AF_UNIX, 0),
                                           fds[1]);
    session = std::make_shared<tether::proxy::ClientSession>(
        std::move(s), settings, *pools, metrics.service(0), [this] { closed = true; });
    session->start();
  }

  ~SessionFixture() {
    if (session) session->close();
    pools->stop();
    io.restart();
    io.run_for(100ms);
    if (client >= 0) ::close(client);
  }

  void send(std::string_view bytes) {
    std::size_t off = 0;
    while (off < bytes.size()) {
      auto n = ::send(client, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n > 0) {
        off += static_cast<std::size_t>(n);
      } else {
        REQUIRE(errno == EAGAIN);
        pump(1ms);
      }
    }
  }

  void pump(std::chrono::milliseconds d) {
    io.restart();
    io.run_for(d);
  }

  // Reads until `expected` bytes arrived, EOF, or the limit; returns what arrived.
  std::string receive(std::size_t expected, bool* eof = nullptr,
                      std::chrono::milliseconds limit = 5s) {
    std::string got;
    auto end = std::chrono::steady_clock::now() + limit;
    while (got.size() < expected && std::chrono::steady_clock::now() < end) {
      pump(2ms);
      char buf[65536];
      auto n = ::read(client, buf, sizeof buf);
      if (n > 0) got.append(buf, static_cast<std::size_t>(n));
      if (n == 0) {
        if (eof) *eof = true;
        break;
      }
    }
    return got;
  }
};

// Pumps the fixture's io_context until `done` holds, for at most about 2 s; returns done().
inline bool wait_for(SessionFixture& f, const std::function<bool()>& done) {
  for (int i = 0; i < 1000 && !done(); ++i)
    f.pump(std::chrono::milliseconds(2));
  return done();
}

}  // namespace tether::testing
