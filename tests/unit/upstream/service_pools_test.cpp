// ServicePools: a pool per database, created on first use, whose connections selected
// it in their handshake, and which is born in the service's current state (target,
// pause, stop) and follows it from then on. Real redis-server processes, no mocks.
#include "tether/upstream/service_pools.hpp"

#include <hiredis/hiredis.h>

#include <catch2/catch.hpp>
#include <map>

#include "pool_fixture.hpp"
#include "redis_process.hpp"

using namespace std::chrono_literals;
using tether::testing::RedisProcess;
using tether::upstream::Pool;
using tether::upstream::PoolSettings;
using tether::upstream::ServicePools;

namespace {

tether::util::Endpoint local(std::uint16_t port) {
  return *tether::util::parse_endpoint("127.0.0.1:" + std::to_string(port));
}

struct Fixture : tether::testing::PoolFixture {
  std::unique_ptr<ServicePools> pools;

  explicit Fixture(std::uint16_t port, std::uint32_t databases = 16,
                   std::chrono::milliseconds hold = 5s) {
    PoolSettings s = settings(port);
    s.size = 1;
    s.hold_timeout = hold;
    s.databases = databases;
    pools = std::make_unique<ServicePools>(io.get_executor(), s, metrics.service(0));
    pools->start();
  }
  ~Fixture() {
    pools->stop();
    io.restart();
    io.run_for(200ms);
  }
};

// GET `key` in database `db`, straight to redis-server.
std::string get_in(std::uint16_t port, int db, const char* key) {
  redisContext* c = redisConnect("127.0.0.1", port);
  REQUIRE(c != nullptr);
  REQUIRE(c->err == 0);
  freeReplyObject(redisCommand(c, "SELECT %d", db));
  auto* r = static_cast<redisReply*>(redisCommand(c, "GET %s", key));
  std::string out = r && r->str ? std::string(r->str, r->len) : "(nil)";
  if (r) freeReplyObject(r);
  redisFree(c);
  return out;
}

}  // namespace

TEST_CASE("service pools: a database's pool is created on first use and selects it") {
  RedisProcess redis;
  Fixture f(redis.port());
  CHECK(f.pools->count() == 1);
  CHECK(f.pools->find(3) == nullptr);
  Pool& db3 = f.pools->pool(3);
  CHECK(f.pools->count() == 2);
  CHECK(f.pools->find(3) == &db3);
  CHECK(&f.pools->pool(3) == &db3);  // once per database
  CHECK(db3.settings().database == 3);
  CHECK(f.reply(f.send(db3, {"SET", "k", "three"})) == "+OK\r\n");
  CHECK(f.reply(f.send(f.pools->pool(0), {"SET", "k", "zero"})) == "+OK\r\n");
  CHECK(get_in(redis.port(), 3, "k") == "three");
  CHECK(get_in(redis.port(), 0, "k") == "zero");
}

TEST_CASE("service pools: a pool created later follows the retarget, pause and stop before") {
  RedisProcess old_master;
  RedisProcess new_master;
  Fixture f(old_master.port());
  f.pools->retarget(local(new_master.port()), Pool::RetargetMode::abandon);
  f.pools->pause("failover of mymaster has begun");
  Pool& db5 = f.pools->pool(5);
  CHECK(db5.target() == local(new_master.port()));
  CHECK(db5.paused());
  auto held = f.send(db5, {"SET", "k", "five"});
  f.run_until([] { return false; }, 100ms);
  CHECK(f.sink->replies.count(held) == 0);
  CHECK(db5.held_commands() == 1);
  f.pools->resume();
  CHECK_FALSE(db5.paused());
  CHECK(f.reply(held) == "+OK\r\n");
  CHECK(get_in(new_master.port(), 5, "k") == "five");
  CHECK(get_in(old_master.port(), 5, "k") == "(nil)");
  // A pool that exists follows the next retarget as well.
  f.pools->retarget(local(old_master.port()));
  CHECK(db5.target() == local(old_master.port()));
  CHECK(f.reply(f.send(db5, {"SET", "k", "back"})) == "+OK\r\n");
  CHECK(get_in(old_master.port(), 5, "k") == "back");
  f.pools->stop();
  // After the stop a new database's pool refuses at once, like the others.
  Pool& db6 = f.pools->pool(6);
  CHECK(f.reply(f.send(db6, {"PING"})).starts_with("-NOMASTER "));
}

TEST_CASE("service pools: reconfigure reaches every pool, each keeping its database") {
  RedisProcess redis;
  Fixture f(redis.port());
  Pool& db2 = f.pools->pool(2);
  PoolSettings next = f.pools->settings();
  next.size = 2;
  next.databases = 8;
  f.pools->reconfigure(next);
  CHECK(f.pools->settings().databases == 8);
  CHECK(db2.settings().size == 2);
  CHECK(db2.settings().database == 2);
  CHECK(f.pools->pool(0).settings().database == 0);
  CHECK(f.run_until([&] { return db2.accepting_connections() == 2; }));
  CHECK(f.reply(f.send(db2, {"SET", "k", "two"})) == "+OK\r\n");
  CHECK(get_in(redis.port(), 2, "k") == "two");
}

TEST_CASE("service pools: a database Redis does not have fails the handshake, named") {
  RedisProcess redis;  // databases 16
  Fixture f(redis.port(), 32, 300ms);
  auto slot = f.send(f.pools->pool(20), {"PING"});
  const auto reply = f.reply(slot);
  CHECK(reply.starts_with("-NOMASTER "));
  CHECK(reply.find("SELECT 20 at 127.0.0.1:" + std::to_string(redis.port()) +
                   " failed: ERR DB index is out of range") != std::string::npos);
}
