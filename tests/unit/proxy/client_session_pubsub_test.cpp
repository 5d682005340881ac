// ClientSession subscribers: the SUBSCRIBE family on the client's own connection in relay
// mode, byte for byte as Redis answers, back to the shared path at 0 subscriptions, and
// re-subscribed when the connection is lost.
#include <prometheus/counter.h>

#include <catch2/catch.hpp>

#include "redis_direct.hpp"
#include "redis_process.hpp"
#include "session_fixture.hpp"

using namespace std::chrono_literals;
using tether::testing::direct;
using tether::testing::RedisProcess;
using Fixture = tether::testing::SessionFixture;
using tether::testing::wait_for;

namespace {

std::string conf(std::string_view kind, std::string_view name, int count) {
  std::string out = "*3\r\n$" + std::to_string(kind.size()) + "\r\n" + std::string(kind) + "\r\n";
  out += name.empty() ? std::string("$-1\r\n")
                      : "$" + std::to_string(name.size()) + "\r\n" + std::string(name) + "\r\n";
  return out + ":" + std::to_string(count) + "\r\n";
}

std::string message(std::string_view channel, std::string_view payload) {
  return "*3\r\n$7\r\nmessage\r\n$" + std::to_string(channel.size()) + "\r\n" +
         std::string(channel) + "\r\n$" + std::to_string(payload.size()) + "\r\n" +
         std::string(payload) + "\r\n";
}

// Subscribers of `channel` on the server, as PUBSUB NUMSUB (or SHARDNUMSUB) reports them.
std::string numsub(std::uint16_t port, const char* channel, const char* sub = "NUMSUB") {
  // hiredis splits the format at spaces: a script without any.
  const std::string script =
      std::string("EVAL return(redis.call('PUBSUB','") + sub + "',KEYS[1])[2]) 1 " + channel;
  return direct(port, script.c_str());
}

}  // namespace

TEST_CASE("pubsub: subscribe, receive, unsubscribe, back to shared commands") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("SET k v\r\nSUBSCRIBE a b\r\n");
  std::string want = "+OK\r\n" + conf("subscribe", "a", 1) + conf("subscribe", "b", 2);
  CHECK(f.receive(want.size()) == want);
  CHECK(f.pool->dedicated_in_use() == 1);
  CHECK(f.session->subscriptions().count() == 2);
  CHECK(direct(redis.port(), "PUBLISH a hello") == "1");
  want = message("a", "hello");
  CHECK(f.receive(want.size()) == want);
  // Redis's own answers in subscriber mode.
  f.send("PING\r\nGET k\r\n");
  want =
      "*2\r\n$4\r\npong\r\n$0\r\n\r\n-ERR Can't execute 'get': only (P|S)SUBSCRIBE / "
      "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n";
  CHECK(f.receive(want.size()) == want);
  f.send("UNSUBSCRIBE a\r\nUNSUBSCRIBE\r\nGET k\r\n");
  want = conf("unsubscribe", "a", 1) + conf("unsubscribe", "b", 0) + "$1\r\nv\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(f.session->subscriptions().count() == 0);
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));  // released
  f.send("PING\r\n");
  CHECK(f.receive(7) == "+PONG\r\n");
  CHECK_FALSE(f.closed);
}

TEST_CASE("pubsub: AUTH and HELLO of a subscriber are answered as Redis does, never sent") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("SUBSCRIBE a\r\nAUTH secret\r\nHELLO 2 AUTH default secret\r\nPING\r\n");
  const std::string context =
      "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this "
      "context\r\n";
  const std::string want = conf("subscribe", "a", 1) + "-ERR Can't execute 'auth" + context +
                           "-ERR Can't execute 'hello" + context + "*2\r\n$4\r\npong\r\n$0\r\n\r\n";
  CHECK(f.receive(want.size()) == want);
  // The password (maybe the client's own for the proxy) never reached Redis.
  const auto stats = direct(redis.port(), "INFO commandstats");
  CHECK(stats.find("cmdstat_auth:") == std::string::npos);
  CHECK(stats.find("cmdstat_hello:") == std::string::npos);
  CHECK_FALSE(f.closed);
}

TEST_CASE("pubsub: patterns and shard channels, and RESET ends them all") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("PSUBSCRIBE n.*\r\nSSUBSCRIBE s\r\n");
  std::string want = conf("psubscribe", "n.*", 1) + conf("ssubscribe", "s", 1);
  CHECK(f.receive(want.size()) == want);
  CHECK(direct(redis.port(), "PUBLISH n.x 1") == "1");
  CHECK(direct(redis.port(), "SPUBLISH s 2") == "1");
  want =
      "*4\r\n$8\r\npmessage\r\n$3\r\nn.*\r\n$3\r\nn.x\r\n$1\r\n1\r\n"
      "*3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$1\r\n2\r\n";
  CHECK(f.receive(want.size()) == want);
  f.send("RESET\r\nPING\r\n");
  CHECK(f.receive(15) == "+RESET\r\n+PONG\r\n");
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));
  CHECK(numsub(redis.port(), "s", "SHARDNUMSUB") == "0");
}

TEST_CASE(
    "pubsub: UNSUBSCRIBE with no subscription is Redis's answer, on a connection "
    "given back at once") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("UNSUBSCRIBE\r\nSUNSUBSCRIBE x\r\nPING\r\n");
  const std::string want = conf("unsubscribe", "", 0) + conf("sunsubscribe", "x", 0) + "+PONG\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));
}

TEST_CASE("pubsub: past pool.max_dedicated SUBSCRIBE gets -DEDICATEDFULL, nothing held") {
  RedisProcess redis;
  Fixture f(redis.port(), [](tether::upstream::PoolSettings& s) { s.max_dedicated = 0; });
  f.open();
  f.send("SUBSCRIBE a\r\nPING\r\n");
  const std::string want =
      "-DEDICATEDFULL all 0 dedicated upstream connections of service 'test' are in use "
      "(pool.max_dedicated); try again later\r\n+PONG\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(f.session->subscriptions().count() == 0);
}

TEST_CASE("pubsub: a lost connection is replaced and every subscription made again") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("SUBSCRIBE a\r\nPSUBSCRIBE p*\r\nSSUBSCRIBE s\r\n");
  std::string want =
      conf("subscribe", "a", 1) + conf("psubscribe", "p*", 2) + conf("ssubscribe", "s", 1);
  CHECK(f.receive(want.size()) == want);
  // A failover begins: the dedicated connection closes; one comes back after it.
  f.pool->pause("failover of test in progress");
  CHECK(wait_for(f, [&] { return numsub(redis.port(), "a") == "0"; }));
  // Sent while no connection is there: confirmed once the new one is.
  f.send("SUBSCRIBE b\r\n");
  f.pump(50ms);
  f.pool->resume();
  want = conf("subscribe", "b", 3);
  CHECK(f.receive(want.size()) == want);
  CHECK(numsub(redis.port(), "a") == "1");
  CHECK(f.metrics.service(0).resubscribed->Value() == 1);
  CHECK(direct(redis.port(), "PUBLISH a after") == "1");
  CHECK(direct(redis.port(), "PUBLISH px after") == "1");
  CHECK(direct(redis.port(), "SPUBLISH s after") == "1");
  want = message("a", "after") +
         "*4\r\n$8\r\npmessage\r\n$2\r\np*\r\n$2\r\npx\r\n$5\r\nafter\r\n"
         "*3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$5\r\nafter\r\n";
  // Exactly these bytes: no confirmation of the re-subscription reaches the client.
  CHECK(f.receive(want.size() + 1, nullptr, 300ms) == want);
  f.send("UNSUBSCRIBE\r\nPUNSUBSCRIBE\r\nSUNSUBSCRIBE\r\nPING\r\n");
  const auto a_or_b = f.receive(1000, nullptr, 500ms);
  CHECK(
      a_or_b.ends_with(conf("punsubscribe", "p*", 0) + conf("sunsubscribe", "s", 0) + "+PONG\r\n"));
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));
  CHECK_FALSE(f.closed);
}

TEST_CASE("pubsub: a subscriber that cannot be re-subscribed is closed") {
  auto redis = std::make_unique<RedisProcess>();
  const auto port = redis->port();
  Fixture f(port, [](tether::upstream::PoolSettings& s) { s.hold_timeout = 200ms; });
  f.open();
  f.send("SUBSCRIBE a\r\n");
  const std::string want = conf("subscribe", "a", 1);
  CHECK(f.receive(want.size()) == want);
  redis.reset();  // the master is gone for longer than hold.timeout
  bool eof = false;
  CHECK(f.receive(1, &eof, 3s).empty());
  CHECK(eof);
  CHECK(f.closed);
}

TEST_CASE("pubsub: a RESP3 subscriber gets push frames, on a new connection too") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("HELLO 3\r\n");
  const auto hello = f.receive(1 << 16, nullptr, 300ms);
  REQUIRE(hello.starts_with("%"));
  f.send("SUBSCRIBE a\r\n");
  std::string want = ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n";
  CHECK(f.receive(want.size()) == want);
  f.pool->pause("failover of test in progress");
  CHECK(wait_for(f, [&] { return numsub(redis.port(), "a") == "0"; }));
  f.pool->resume();
  CHECK(wait_for(f, [&] { return numsub(redis.port(), "a") == "1"; }));
  CHECK(direct(redis.port(), "PUBLISH a after") == "1");
  want = ">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nafter\r\n";
  CHECK(f.receive(want.size() + 1, nullptr, 300ms) == want);
  // Subscribed RESP3 clients may run any command.
  f.send("SET k v\r\nGET k\r\n");
  CHECK(f.receive(12) == "+OK\r\n$1\r\nv\r\n");
  CHECK_FALSE(f.closed);
}

TEST_CASE("pubsub: RESET of a RESP3 subscriber ends its subscriptions and RESP3") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("HELLO 3\r\n");
  REQUIRE(f.receive(1 << 16, nullptr, 300ms).starts_with("%"));
  f.send("SUBSCRIBE a\r\nRESET\r\nGET nokey\r\n");
  const std::string want = ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n+RESET\r\n$-1\r\n";
  CHECK(f.receive(want.size() + 1, nullptr, 500ms) == want);
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));
  CHECK(numsub(redis.port(), "a") == "0");
}

TEST_CASE("pubsub: a RESP3 subscriber leaves relay mode, state commands refused meanwhile") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("HELLO 3\r\n");
  CHECK(f.receive(1 << 16, nullptr, 500ms).starts_with("%7\r\n"));  // the server's map
  f.send("SET k v\r\nSUBSCRIBE a\r\n");
  CHECK(f.receive(1 << 16, nullptr, 500ms) == "+OK\r\n>3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n");
  // While subscribed in RESP3 Redis would run these on the relay connection, which does
  // not follow their state: refused, the connection kept.
  f.send("MULTI\r\nSELECT 1\r\nHELLO 2\r\nGET k\r\n");
  const std::string refused =
      "' on a connection with subscriptions or MONITOR (or an unconfirmed UNSUBSCRIBE) is not "
      "supported by redis-tether: unsubscribe or RESET first\r\n";
  CHECK(f.receive(1 << 16, nullptr, 500ms) == "-NOTSUPPORTED 'MULTI" + refused +
                                                  "-NOTSUPPORTED 'SELECT" + refused +
                                                  "-NOTSUPPORTED 'HELLO" + refused + "$1\r\nv\r\n");
  f.send("UNSUBSCRIBE a\r\n");
  CHECK(f.receive(1 << 16, nullptr, 500ms) == ">3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n");
  // Back to a plain RESP3 client: the relay connection is released, the next command gets
  // a dedicated connection in RESP3 again, and transactions work.
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));
  f.send("MULTI\r\nHGETALL nothing\r\nEXEC\r\n");
  CHECK(f.receive(1 << 16, nullptr, 500ms) == "+OK\r\n+QUEUED\r\n*1\r\n%0\r\n");
  CHECK_FALSE(f.closed);
}
