// Test fixture for Pool: a pool on an io_context the test runs in small steps, replies
// collected by slot, against a real redis-server (tests/support/redis_process.hpp).
#pragma once

#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "tether/resp/value.hpp"
#include "tether/upstream/pool.hpp"

namespace tether::testing {

using namespace std::chrono_literals;

// Keeps each reply by slot.
struct Collector : tether::upstream::ReplySink {
  std::map<std::uint64_t, std::string> replies;
  void deliver(std::uint64_t slot, std::string_view reply) override {
    replies[slot] = std::string(reply);
  }
};

// One pool on a test-run io_context, one reply collector for the commands it sends.
struct PoolFixture {
  // Declared first so that it outlives the io_context: handlers and coroutine frames the
  // io_context destroys (a test that failed before stopping its pool) still update it.
  tether::metrics::Metrics metrics{{"test"}};
  tether::asio::io_context io;
  std::shared_ptr<Collector> sink = std::make_shared<Collector>();
  std::uint64_t next_slot = 0;

  tether::upstream::PoolSettings settings(std::uint16_t port) {
    tether::upstream::PoolSettings s;
    s.service = "test";
    s.target = *tether::util::parse_endpoint("127.0.0.1:" + std::to_string(port));
    s.size = 2;
    s.reconnect_min = 20ms;
    s.reconnect_max = 100ms;
    s.hold_timeout = 5s;
    // Most tests count the shared connections (the ready gauge counts warm ones too); the
    // warm set's tests (pool_dedicated_test.cpp) turn it on.
    s.dedicated_warm = 0;
    return s;
  }

  // Runs the io_context until `done` holds or `limit` passes; returns done().
  template <typename F>
  bool run_until(F done, std::chrono::milliseconds limit = 5s) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < end) {
      io.restart();
      io.run_for(5ms);
    }
    return done();
  }

  std::uint64_t send(tether::upstream::Pool& pool, std::initializer_list<std::string_view> args) {
    auto slot = next_slot++;
    pool.dispatch(sink, slot, tether::resp::encode_command(args));
    return slot;
  }

  std::string reply(std::uint64_t slot, std::chrono::milliseconds limit = 5s) {
    run_until([&] { return sink->replies.count(slot) > 0; }, limit);
    return sink->replies.count(slot) ? sink->replies[slot] : "<no reply>";
  }

  void finish(tether::upstream::Pool& pool) {
    pool.stop();
    io.restart();
    io.run_for(200ms);
  }
};

}  // namespace tether::testing
