// ClientSession: AUTH with the proxy's client password, HELLO, and RESP3 on the client's
// own connection, against a real redis-server.
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

const std::string kNoauth = "-NOAUTH Authentication required.\r\n";
const std::string kWrongPass = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";

// HELLO's reply up to its `id` field (which differs per connection), for `proto`.
std::string hello_head(int proto) {
  const std::string fields = "$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n";
  return (proto == 3 ? "%7\r\n" : "*14\r\n") + fields;
}

// Receives one HELLO reply (it ends with "modules" and its empty list).
std::string receive_hello(Fixture& f) {
  std::string got;
  for (int i = 0; i < 100 && got.find("$7\r\nmodules\r\n*0\r\n") == std::string::npos; ++i)
    got += f.receive(1, nullptr, 50ms);
  return got;
}

}  // namespace

TEST_CASE("auth: NOAUTH before AUTH, WRONGPASS keeps the client, AUTH lets it in") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.settings.client_password = "s3cret";
  f.open();
  // QUIT, RESET, AUTH and HELLO are allowed before AUTH; everything else is refused,
  // whatever its class, and nothing reaches the upstream.
  f.send("SET k v\r\nMULTI\r\nCLIENT SETNAME x\r\nSHUTDOWN\r\nRESET\r\nAUTH wrong\r\nGET k\r\n");
  const std::string want =
      kNoauth + kNoauth + kNoauth + kNoauth + "+RESET\r\n" + kWrongPass + kNoauth;
  CHECK(f.receive(want.size()) == want);
  CHECK(direct(redis.port(), "EXISTS k") == "0");
  CHECK(f.pool->dedicated_in_use() == 0);
  f.send("AUTH default s3cret\r\nSET k v\r\nAUTH bad\r\nGET k\r\n");
  const std::string after = "+OK\r\n+OK\r\n" + kWrongPass + "$1\r\nv\r\n";  // still in
  CHECK(f.receive(after.size()) == after);
  // RESET logs the client out, as Redis does with requirepass.
  f.send("RESET\r\nGET k\r\nAUTH s3cret\r\nGET k\r\n");
  const std::string reset = "+RESET\r\n" + kNoauth + "+OK\r\n$1\r\nv\r\n";
  CHECK(f.receive(reset.size()) == reset);
  CHECK_FALSE(f.closed);
}

TEST_CASE("auth: a changed password (reload) applies to the next AUTH") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.settings.client_password = "old";
  f.open();
  f.send("AUTH old\r\n");
  CHECK(f.receive(5) == "+OK\r\n");
  f.settings.client_password = "new";  // what Listener::update does
  f.send("PING\r\nAUTH old\r\nAUTH new\r\n");
  const std::string want = "+PONG\r\n" + kWrongPass + "+OK\r\n";
  CHECK(f.receive(want.size()) == want);
}

TEST_CASE("auth: without a client password, AUTH is answered as Redis without requirepass") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("AUTH x\r\nAUTH default x\r\nAUTH bob x\r\nPING\r\n");
  const std::string want =
      "-ERR AUTH <password> called without any password configured for the default user. "
      "Are you sure your configuration is correct?\r\n+OK\r\n" +
      kWrongPass + "+PONG\r\n";
  CHECK(f.receive(want.size()) == want);
}

TEST_CASE(
    "hello: HELLO 2 AUTH ... SETNAME ... authenticates, names, and answers the server's map") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.settings.client_password = "pw";
  f.open();
  f.send("HELLO 2 AUTH default pw SETNAME app\r\n");
  const auto hello = receive_hello(f);
  CHECK(hello.starts_with(hello_head(2)));
  CHECK(hello.find("$5\r\nproto\r\n:2\r\n") != std::string::npos);
  f.send("CLIENT GETNAME\r\nHELLO 2 AUTH default bad\r\nPING\r\n");
  const std::string want = "$3\r\napp\r\n" + kWrongPass + "+PONG\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(f.pool->dedicated_in_use() == 0);  // RESP2 needs no connection of its own
}

TEST_CASE("hello: HELLO 3 pins the client in RESP3 until HELLO 2") {
  RedisProcess redis;
  Fixture f(redis.port());
  REQUIRE(direct(redis.port(), "HSET h f v") == "1");
  f.open();
  f.send("HELLO 3\r\n");
  const auto hello = receive_hello(f);
  CHECK(hello.starts_with(hello_head(3)));
  CHECK(f.pool->dedicated_in_use() == 1);
  f.send("HGETALL h\r\nCLIENT GETNAME\r\nGET missing\r\n");
  const std::string resp3 = "%1\r\n$1\r\nf\r\n$1\r\nv\r\n_\r\n_\r\n";
  CHECK(f.receive(resp3.size()) == resp3);
  // A transaction in RESP3 keeps the connection afterwards.
  f.send("MULTI\r\nHGETALL h\r\nEXEC\r\n");
  const std::string tx = "+OK\r\n+QUEUED\r\n*1\r\n%1\r\n$1\r\nf\r\n$1\r\nv\r\n";
  CHECK(f.receive(tx.size()) == tx);
  f.pump(20ms);
  CHECK(f.pool->dedicated_in_use() == 1);
  f.send("HELLO 2\r\n");
  CHECK(receive_hello(f).starts_with(hello_head(2)));
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));
  f.send("HGETALL h\r\n");
  const std::string resp2 = "*2\r\n$1\r\nf\r\n$1\r\nv\r\n";
  CHECK(f.receive(resp2.size()) == resp2);
}

TEST_CASE("hello: RESET pipelined behind RESP3 commands: the rest are RESP2 again") {
  RedisProcess redis;
  Fixture f(redis.port());
  REQUIRE(direct(redis.port(), "HSET h f v") == "1");
  f.open();
  f.send("HELLO 3\r\nHGETALL h\r\nRESET\r\nHGETALL h\r\nGET missing\r\n");
  const auto hello = receive_hello(f);
  REQUIRE(hello.starts_with(hello_head(3)));
  const auto tail = hello.substr(hello.find("modules\r\n*0\r\n") + 13);
  const std::string want =
      "%1\r\n$1\r\nf\r\n$1\r\nv\r\n+RESET\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n$-1\r\n";
  CHECK(tail + f.receive(want.size() - tail.size()) == want);
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));
}

TEST_CASE("hello: a lost connection is replaced and HELLO 3 replayed, unseen by the client") {
  RedisProcess redis;
  Fixture f(redis.port());
  REQUIRE(direct(redis.port(), "HSET h f v") == "1");
  f.open();
  f.send("HELLO 3\r\n");
  REQUIRE(receive_hello(f).starts_with(hello_head(3)));
  // A failover begins: the dedicated connection closes.
  f.pool->pause("failover of test in progress");
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));
  f.send("HGETALL h\r\n");  // waits for a new connection
  f.pump(50ms);
  f.pool->resume();
  const std::string want = "%1\r\n$1\r\nf\r\n$1\r\nv\r\n";
  CHECK(f.receive(want.size() + 1, nullptr, 2s) == want);  // nothing more: the replay is unseen
  CHECK(f.pool->dedicated_in_use() == 1);
  CHECK_FALSE(f.closed);
}

TEST_CASE("hello: HELLO 3 past pool.max_dedicated gets DEDICATEDFULL and stays RESP2") {
  RedisProcess redis;
  Fixture f(redis.port(), [](tether::upstream::PoolSettings& s) { s.max_dedicated = 0; });
  f.open();
  f.send("HELLO 3\r\nHGETALL h\r\n");
  const std::string want =
      "-DEDICATEDFULL all 0 dedicated upstream connections of service 'test' are in use "
      "(pool.max_dedicated); try again later\r\n*0\r\n";
  CHECK(f.receive(want.size()) == want);
}

TEST_CASE("hello: HELLO and AUTH inside MULTI are refused, and EXEC fails as in Redis") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("MULTI\r\nHELLO 3\r\nAUTH default x\r\nSET k v\r\nEXEC\r\n");
  // Redis fails a transaction in which it refused a command; so does the proxy, for the
  // commands it refuses: none of it runs.
  const std::string want =
      "+OK\r\n"
      "-NOTSUPPORTED 'HELLO' inside MULTI: redis-tether answers it itself and cannot queue it "
      "in the transaction\r\n"
      "-NOTSUPPORTED 'AUTH' inside MULTI: redis-tether answers it itself and cannot queue it "
      "in the transaction\r\n"
      "+QUEUED\r\n-EXECABORT Transaction discarded because of previous errors.\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(direct(redis.port(), "EXISTS k") == "0");
  // The next transaction is not affected.
  f.send("MULTI\r\nSET k v\r\nEXEC\r\n");
  CHECK(f.receive(23) == "+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n");
}
