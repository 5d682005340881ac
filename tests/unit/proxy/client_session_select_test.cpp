// ClientSession SELECT: answered by the proxy, the client's commands then run on the pool
// of that database, in the order sent; checked on the redis-server itself.
#include <catch2/catch.hpp>

#include "redis_direct.hpp"
#include "redis_process.hpp"
#include "session_fixture.hpp"

using namespace std::chrono_literals;
using tether::testing::direct;
using tether::testing::RedisProcess;
using Fixture = tether::testing::SessionFixture;

namespace {

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i)
    out += s;
  return out;
}

}  // namespace

TEST_CASE("select: SELECT n is answered +OK and the client's commands run in database n") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("SET k zero\r\nSELECT 3\r\nSET k three\r\nGET k\r\nSELECT 0\r\nGET k\r\n");
  const std::string want = "+OK\r\n+OK\r\n+OK\r\n$5\r\nthree\r\n+OK\r\n$4\r\nzero\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(f.session->database() == 0);
  CHECK(direct(redis.port(), "GET k", 3) == "three");
  CHECK(direct(redis.port(), "GET k") == "zero");
  CHECK(f.pools->count() == 2);  // databases 0 and 3
}

TEST_CASE("select: a bad index gets Redis's own error and the database stays") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("SELECT 2\r\nSET k two\r\n");
  CHECK(f.receive(10) == "+OK\r\n+OK\r\n");
  const std::string range = "-ERR DB index is out of range\r\n";
  const std::string integer = "-ERR value is not an integer or out of range\r\n";
  const std::string arity = "-ERR wrong number of arguments for 'select' command\r\n";
  const std::string int_range =
      "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n";
  // The same words redis-server itself answers (databases 16).
  CHECK("-" + direct(redis.port(), "SELECT 16") + "\r\n" == range);
  CHECK("-" + direct(redis.port(), "SELECT -1") + "\r\n" == range);
  CHECK("-" + direct(redis.port(), "SELECT 2147483648") + "\r\n" == int_range);
  CHECK("-" + direct(redis.port(), "SELECT 99999999999999999999") + "\r\n" == integer);
  CHECK("-" + direct(redis.port(), "SELECT 01") + "\r\n" == integer);
  CHECK("-" + direct(redis.port(), "SELECT -0") + "\r\n" == integer);
  CHECK("-" + direct(redis.port(), "SELECT") + "\r\n" == arity);
  f.send(
      "SELECT 16\r\nSELECT -1\r\nSELECT 2147483648\r\nSELECT 99999999999999999999\r\n"
      "SELECT x\r\nSELECT 01\r\nSELECT -0\r\nSELECT\r\nSELECT 1 2\r\nGET k\r\n");
  const std::string want = range + range + int_range + integer + integer + integer + integer +
                           arity + arity + "$3\r\ntwo\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(f.session->database() == 2);
  CHECK(f.pools->count() == 2);
  CHECK_FALSE(f.closed);
}

TEST_CASE("select: pool.databases bounds the index and the pools") {
  RedisProcess redis;
  Fixture f(redis.port(), [](tether::upstream::PoolSettings& ps) { ps.databases = 4; });
  f.open();
  f.send("SELECT 3\r\nSELECT 4\r\nPING\r\n");
  const std::string want = "+OK\r\n-ERR DB index is out of range\r\n+PONG\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(f.session->database() == 3);
}

TEST_CASE("select: commands after SELECT never overtake those in flight in the old database") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.settings.max_pending = 1000000;  // the whole burst is read at once
  f.open();
  // Database 1's pool is connected already, so nothing but the session keeps SWAPDB
  // there from running while the SETs are still on their way in database 0.
  f.send("SELECT 1\r\nPING\r\nSELECT 0\r\n");
  CHECK(f.receive(17) == "+OK\r\n+PONG\r\n+OK\r\n");
  // 20000 SETs in database 0 behind a DEBUG SLEEP (so that they pile up unread on their
  // connection), then SWAPDB from database 1: only if every SET ran before it does
  // database 1 end up with all the keys and database 0 with none.
  constexpr int kSets = 20000;
  std::string burst = "DEBUG SLEEP 0.2\r\n";
  for (int i = 0; i < kSets; ++i)
    burst += "SET key:" + std::to_string(i) + " v\r\n";
  f.send(burst + "SELECT 1\r\nSWAPDB 0 1\r\nDBSIZE\r\n");
  const std::string want =
      repeat("+OK\r\n", kSets + 1) + "+OK\r\n+OK\r\n:" + std::to_string(kSets) + "\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(direct(redis.port(), "DBSIZE", 1) == std::to_string(kSets));
  CHECK(direct(redis.port(), "DBSIZE") == "0");
}

TEST_CASE("select: MULTI ... EXEC and WATCH run in the selected database") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("SELECT 5\r\nMULTI\r\nSET t 1\r\nINCR t\r\nEXEC\r\n");
  const std::string want = "+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n:2\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(direct(redis.port(), "GET t", 5) == "2");
  CHECK(direct(redis.port(), "EXISTS t") == "0");
  // WATCH in database 5 watches database 5's key.
  f.send("WATCH t\r\n");
  CHECK(f.receive(5) == "+OK\r\n");
  CHECK(direct(redis.port(), "SET t other", 5) == "OK");
  f.send("MULTI\r\nSET t mine\r\nEXEC\r\n");
  const std::string aborted = "+OK\r\n+QUEUED\r\n*-1\r\n";
  CHECK(f.receive(aborted.size()) == aborted);
  CHECK(direct(redis.port(), "GET t", 5) == "other");
}

TEST_CASE("select: inside MULTI it is queued by Redis and takes effect at EXEC") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("MULTI\r\nSET a 0\r\nSELECT 4\r\nSET a 4\r\nEXEC\r\nSET b 4\r\n");
  const std::string want =
      "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(f.session->database() == 4);
  CHECK(direct(redis.port(), "GET a") == "0");
  CHECK(direct(redis.port(), "GET a", 4) == "4");
  CHECK(direct(redis.port(), "GET b", 4) == "4");  // after EXEC: database 4, as in Redis
  // A transaction that does not run (DISCARD) leaves the database as it was.
  f.send("MULTI\r\nSELECT 7\r\nDISCARD\r\nSET c 4\r\n");
  const std::string discarded = "+OK\r\n+QUEUED\r\n+OK\r\n+OK\r\n";
  CHECK(f.receive(discarded.size()) == discarded);
  CHECK(f.session->database() == 4);
  CHECK(direct(redis.port(), "GET c", 4) == "4");
}

TEST_CASE("select: while WATCH holds the dedicated connection, SELECT goes there") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("WATCH w\r\nSELECT 6\r\nSET x 1\r\nUNWATCH\r\nSET y 1\r\nSELECT 99\r\n");
  const std::string want = "+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n-ERR DB index is out of range\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(f.session->database() == 6);
  CHECK(direct(redis.port(), "EXISTS x y", 6) == "2");
  CHECK(direct(redis.port(), "EXISTS x y") == "0");
}

TEST_CASE("select: RESET returns the client to database 0") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("SELECT 9\r\nSET r 9\r\nRESET\r\nSET r 0\r\n");
  const std::string want = "+OK\r\n+OK\r\n+RESET\r\n+OK\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(f.session->database() == 0);
  CHECK(direct(redis.port(), "GET r", 9) == "9");
  CHECK(direct(redis.port(), "GET r") == "0");
}
