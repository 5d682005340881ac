// Pool, dedicated side: the warm set (ready before anyone asks, handed over without a
// dial, refilled, re-dialled after the target changes or the server drops them, bounded
// apart from max_dedicated) and a pause that drains dedicated connections in use.
#include <catch2/catch.hpp>
#include <set>
#include <sstream>

#include "pool_fixture.hpp"
#include "redis_direct.hpp"
#include "redis_process.hpp"
#include "tether/upstream/pool.hpp"

using namespace std::chrono_literals;
using tether::testing::direct;
using tether::testing::RedisProcess;
using tether::upstream::Connection;
using tether::upstream::Pool;
using Fixture = tether::testing::PoolFixture;

namespace {

// Records what the pool tells one client asking for a dedicated connection.
struct Owner : tether::upstream::DedicatedOwner {
  std::shared_ptr<Connection> connection;
  int ready = 0;
  int lost = 0;
  std::string failed;
  void dedicated_ready(std::shared_ptr<Connection> c) override {
    ++ready;
    connection = std::move(c);
  }
  void dedicated_failed(const std::string& reason) override { failed = reason; }
  void dedicated_lost(Connection&, std::vector<tether::upstream::Unsent>) override {
    ++lost;
    connection.reset();
  }
};

// Writes one command on a dedicated connection; its reply arrives at f.sink's slot.
std::uint64_t send_on(Fixture& f, Connection& c, std::initializer_list<std::string_view> args) {
  const auto slot = f.next_slot++;
  c.enqueue(f.sink, slot, tether::resp::encode_command(args));
  return slot;
}

// The ids of the clients connected to the redis-server (CLIENT LIST's id= fields).
std::set<std::string> client_ids(std::uint16_t port) {
  std::set<std::string> ids;
  std::istringstream lines(direct(port, "CLIENT LIST"));
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("id=")) ids.insert(line.substr(3, line.find(' ') - 3));
  }
  return ids;
}

std::string connected_clients(std::uint16_t port) {
  const auto info = direct(port, "INFO clients");
  const auto at = info.find("connected_clients:") + 18;
  return info.substr(at, info.find('\r', at) - at);
}

tether::upstream::PoolSettings warm_settings(Fixture& f, std::uint16_t port) {
  auto s = f.settings(port);
  s.dedicated_warm = 2;
  return s;
}

tether::util::Endpoint at(std::uint16_t port) {
  return *tether::util::parse_endpoint("127.0.0.1:" + std::to_string(port));
}

}  // namespace

TEST_CASE("dedicated warm: ready at start, handed over without a dial, refilled") {
  RedisProcess redis;
  Fixture f;
  Pool pool(f.io.get_executor(), warm_settings(f, redis.port()), f.metrics.service(0));
  pool.start();
  REQUIRE(f.run_until(
      [&] { return pool.dedicated_warm_ready() == 2 && pool.accepting_connections() == 2; }));
  CHECK(connected_clients(redis.port()) == "5");  // 2 shared, 2 warm, direct()'s own
  const auto before = client_ids(redis.port());
  auto owner = std::make_shared<Owner>();
  REQUIRE(pool.request_dedicated(owner));
  CHECK(owner->ready == 0);  // never from within request_dedicated
  REQUIRE(f.run_until([&] { return owner->connection != nullptr; }));
  CHECK(pool.dedicated_in_use() == 1);
  // The connection handed over was open before the request.
  auto id = f.reply(send_on(f, *owner->connection, {"CLIENT", "ID"}));
  REQUIRE(id.starts_with(":"));
  CHECK(before.count(id.substr(1, id.size() - 3)) == 1);
  // A replacement is dialled; the handed one is the owner's, no longer warm.
  CHECK(f.run_until([&] { return pool.dedicated_warm_ready() == 2; }));
  CHECK(connected_clients(redis.port()) == "6");
  pool.release_dedicated(owner->connection);
  CHECK(f.run_until([&] { return pool.dedicated_in_use() == 0; }));
  CHECK(pool.dedicated_warm_ready() == 2);
  f.finish(pool);
}

TEST_CASE("dedicated warm: none handed out while paused, a retarget moves them") {
  RedisProcess old_master;
  RedisProcess new_master;
  Fixture f;
  Pool pool(f.io.get_executor(), warm_settings(f, old_master.port()), f.metrics.service(0));
  pool.start();
  REQUIRE(f.run_until([&] { return pool.dedicated_warm_ready() == 2; }));
  // Asked for just before the pause, in the same turn: the hand-over comes after it.
  auto early = std::make_shared<Owner>();
  REQUIRE(pool.request_dedicated(early));
  pool.pause("failover of test has begun");
  auto during = std::make_shared<Owner>();
  REQUIRE(pool.request_dedicated(during));
  f.run_until([] { return false; }, 200ms);
  CHECK(early->ready + during->ready == 0);
  CHECK(pool.dedicated_warm_ready() == 2);  // kept, but not for the old master's clients
  pool.retarget(at(new_master.port()));
  REQUIRE(f.run_until([&] { return early->connection && during->connection; }));
  const auto port = "tcp_port:" + std::to_string(new_master.port()) + "\r\n";
  for (auto& owner : {early, during}) {
    auto info = f.reply(send_on(f, *owner->connection, {"INFO", "server"}));
    CHECK(info.find(port) != std::string::npos);
  }
  CHECK(f.run_until([&] { return pool.dedicated_warm_ready() == 2; }));
  // Nothing is left on the old master but direct()'s own connection; the new one has the
  // 2 shared, 2 warm, the 2 owners' and direct()'s.
  CHECK(f.run_until([&] { return connected_clients(old_master.port()) == "1"; }));
  CHECK(f.run_until([&] { return connected_clients(new_master.port()) == "7"; }));
  f.finish(pool);
}

TEST_CASE("dedicated warm: dropped by the server, dialled again with backoff") {
  RedisProcess redis;
  Fixture f;
  Pool pool(f.io.get_executor(), warm_settings(f, redis.port()), f.metrics.service(0));
  pool.start();
  REQUIRE(f.run_until([&] { return pool.dedicated_warm_ready() == 2; }));
  SECTION("CLIENT KILL") {
    const auto before = client_ids(redis.port());
    CHECK(direct(redis.port(), "CLIENT KILL TYPE normal") == "4");  // skips its own
    // Asked for before the pool has read the EOFs: the dead warm ones are not handed over.
    auto early = std::make_shared<Owner>();
    REQUIRE(pool.request_dedicated(early));
    REQUIRE(f.run_until([&] { return early->connection != nullptr; }));
    CHECK(f.reply(send_on(f, *early->connection, {"PING"})) == "+PONG\r\n");
    CHECK(early->lost == 0);
    pool.release_dedicated(early->connection);
    // All four dialled again (2 shared, 2 warm; with direct()'s own, 5), none of them old.
    CHECK(f.run_until([&] {
      if (pool.dedicated_warm_ready() != 2 || pool.accepting_connections() != 2) return false;
      auto now = client_ids(redis.port());
      return now.size() == 5 &&
             std::none_of(now.begin(), now.end(), [&](auto& id) { return before.count(id); });
    }));
  }
  SECTION("a restart: the dials that fail back off instead of spinning") {
    redis.kill();
    CHECK(f.run_until([&] { return pool.dedicated_warm_ready() == 0; }, 1s));
    f.run_until([] { return false; }, 500ms);
    // With reconnect 20ms doubling to 100ms: a handful per connection in 500ms, where a
    // tight loop would make thousands.
    CHECK(f.metrics.service(0).upstream_connect_failures->Value() < 40);
    redis.start();
    CHECK(f.run_until([&] { return pool.dedicated_warm_ready() == 2; }));
  }
  auto owner = std::make_shared<Owner>();
  REQUIRE(pool.request_dedicated(owner));
  REQUIRE(f.run_until([&] { return owner->connection != nullptr; }));
  CHECK(f.reply(send_on(f, *owner->connection, {"PING"})) == "+PONG\r\n");
  f.finish(pool);
}

TEST_CASE("dedicated warm: max_dedicated bounds the connections handed over, not the warm") {
  RedisProcess redis;
  Fixture f;
  auto s = warm_settings(f, redis.port());
  s.max_dedicated = 2;
  Pool pool(f.io.get_executor(), s, f.metrics.service(0));
  pool.start();
  REQUIRE(f.run_until([&] { return pool.dedicated_warm_ready() == 2; }));
  auto a = std::make_shared<Owner>();
  auto b = std::make_shared<Owner>();
  auto c = std::make_shared<Owner>();
  REQUIRE(pool.request_dedicated(a));
  REQUIRE(pool.request_dedicated(b));
  CHECK_FALSE(pool.request_dedicated(c));
  REQUIRE(f.run_until([&] { return a->connection && b->connection; }));
  CHECK(f.run_until([&] { return pool.dedicated_warm_ready() == 2; }));  // refilled anyway
  CHECK_FALSE(pool.request_dedicated(c));
  CHECK(pool.dedicated_in_use() == 2);
  pool.release_dedicated(a->connection);
  CHECK(f.run_until([&] { return pool.dedicated_in_use() == 1; }));
  REQUIRE(pool.request_dedicated(c));
  CHECK(f.run_until([&] { return c->connection != nullptr; }));
  SECTION("a smaller dedicated_warm on reload closes the extra ones") {
    s.dedicated_warm = 1;
    pool.reconfigure(s);
    CHECK(f.run_until([&] { return pool.dedicated_warm_ready() == 1; }));
    f.run_until([] { return false; }, 100ms);
    CHECK(pool.dedicated_warm_ready() == 1);
  }
  SECTION("and never more warm ones than max_dedicated") {
    s.dedicated_warm = 5;
    pool.reconfigure(s);
    f.run_until([] { return false; }, 200ms);
    CHECK(pool.dedicated_warm_ready() == 2);
  }
  f.finish(pool);
}

TEST_CASE("a pause drains a dedicated connection: what was written gets its real reply") {
  RedisProcess redis;
  Fixture f;
  Pool pool(f.io.get_executor(), warm_settings(f, redis.port()), f.metrics.service(0));
  pool.start();
  CHECK(direct(redis.port(), "SET k v") == "OK");
  auto owner = std::make_shared<Owner>();
  REQUIRE(pool.request_dedicated(owner));
  REQUIRE(f.run_until([&] { return owner->connection != nullptr; }));
  auto& conn = *owner->connection;
  auto sleep = send_on(f, conn, {"DEBUG", "SLEEP", "0.2"});
  auto get = send_on(f, conn, {"GET", "k"});
  f.run_until([] { return false; }, 50ms);
  pool.pause("failover of test has begun");
  CHECK_FALSE(conn.accepting());  // nothing new reaches the old master
  CHECK(f.reply(sleep) == "+OK\r\n");
  CHECK(f.reply(get) == "$1\r\nv\r\n");
  // Then it closes and the owner hears of it, as before.
  CHECK(f.run_until([&] { return owner->lost == 1 && pool.dedicated_in_use() == 0; }));
  // Its next one waits for the end of the pause.
  REQUIRE(pool.request_dedicated(owner));
  f.run_until([] { return false; }, 150ms);
  CHECK(owner->ready == 1);
  pool.resume();
  REQUIRE(f.run_until([&] { return owner->connection != nullptr; }));
  CHECK(f.reply(send_on(f, *owner->connection, {"GET", "k"})) == "$1\r\nv\r\n");
  f.finish(pool);
}

TEST_CASE("retarget(abandon) closes a dedicated connection in use at once") {
  RedisProcess redis;
  Fixture f;
  Pool pool(f.io.get_executor(), warm_settings(f, redis.port()), f.metrics.service(0));
  pool.start();
  auto owner = std::make_shared<Owner>();
  REQUIRE(pool.request_dedicated(owner));
  REQUIRE(f.run_until([&] { return owner->connection != nullptr; }));
  auto blocked = send_on(f, *owner->connection, {"BLPOP", "q", "0"});
  f.run_until([] { return false; }, 50ms);
  pool.pause("failover of test has begun");
  f.run_until([] { return false; }, 100ms);
  CHECK(f.sink->replies.count(blocked) == 0);  // draining: still waiting for its reply
  pool.retarget(at(redis.port()), Pool::RetargetMode::abandon);
  CHECK(f.reply(blocked).starts_with("-OUTCOMEUNKNOWN "));
  CHECK(f.run_until([&] { return owner->lost == 1; }));
  f.finish(pool);
}

TEST_CASE("a request waiting out its backoff takes the new master at once after a retarget") {
  Fixture f;
  const auto dead = tether::testing::free_port();  // nothing listens: every dial fails
  auto s = f.settings(dead);
  s.reconnect_min = 20ms;
  s.reconnect_max = 5s;  // a backoff this long would be waited out without the wake
  s.hold_timeout = 20s;
  Pool pool(f.io.get_executor(), s, f.metrics.service(0));
  pool.start();
  auto owner = std::make_shared<Owner>();
  REQUIRE(pool.request_dedicated(owner));
  f.run_until([] { return false; }, 1500ms);  // 20+40+...+640 ms: the next wait is ~1.3 s
  REQUIRE(owner->ready == 0);
  RedisProcess redis;
  pool.retarget(at(redis.port()), Pool::RetargetMode::abandon);
  // Dialled within a few hundred milliseconds, not after the rest of the backoff.
  CHECK(f.run_until([&] { return owner->ready == 1; }, 400ms));
  REQUIRE(owner->connection);
  const auto slot = send_on(f, *owner->connection, {"PING"});
  CHECK(f.reply(slot) == "+PONG\r\n");
  f.finish(pool);
}
