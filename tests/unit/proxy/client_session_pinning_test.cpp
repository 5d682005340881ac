// ClientSession pinning: MULTI ... EXEC, WATCH and blocking commands run on the client's
// own upstream connection, byte for byte as with Redis, and give it back afterwards.
#include <catch2/catch.hpp>

#include "redis_direct.hpp"
#include "redis_process.hpp"
#include "session_fixture.hpp"

using namespace std::chrono_literals;
using tether::testing::direct;
using tether::testing::RedisProcess;
using Fixture = tether::testing::SessionFixture;
using tether::testing::wait_for;

TEST_CASE("pinning: MULTI ... EXEC after a shared SET, replies as Redis gives them") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  // The SET goes to a shared connection, the transaction to the client's own: GET inside
  // the transaction must still see the SET.
  f.send("SET k 1\r\nMULTI\r\nINCR k\r\nGET k\r\nEXEC\r\nGET k\r\n");
  const std::string want = "+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:2\r\n$1\r\n2\r\n$1\r\n2\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));  // given back
  // DISCARD ends a transaction too; nothing of it ran.
  f.send("MULTI\r\nSET k 9\r\nDISCARD\r\nGET k\r\n");
  const std::string want2 = "+OK\r\n+QUEUED\r\n+OK\r\n$1\r\n2\r\n";
  CHECK(f.receive(want2.size()) == want2);
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));
}

TEST_CASE("pinning: WATCH sees another client's write and EXEC fails") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("WATCH w\r\n");
  CHECK(f.receive(5) == "+OK\r\n");
  CHECK(f.pool->dedicated_in_use() == 1);  // held while the WATCH lives
  CHECK(direct(redis.port(), "SET w other") == "OK");
  f.send("MULTI\r\nSET w mine\r\nEXEC\r\nGET w\r\n");
  const std::string want = "+OK\r\n+QUEUED\r\n*-1\r\n$5\r\nother\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));
}

TEST_CASE("pinning: a blocking command waits on its own connection, others go on") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("BLPOP list 0\r\n");
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 1; }));
  f.pump(50ms);
  CHECK(f.receive(1, nullptr, 50ms).empty());  // blocked
  CHECK(direct(redis.port(), "LPUSH list x") == "1");
  const std::string want = "*2\r\n$4\r\nlist\r\n$1\r\nx\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));
  f.send("PING\r\n");
  CHECK(f.receive(7) == "+PONG\r\n");
}

TEST_CASE("pinning: past pool.max_dedicated a clear error, the transaction never half-run") {
  RedisProcess redis;
  Fixture f(redis.port(), [](tether::upstream::PoolSettings& s) { s.max_dedicated = 0; });
  f.open();
  // A client that does not wait for MULTI's reply: its SET must not run on its own.
  f.send("MULTI\r\nSET a 1\r\nEXEC\r\nGET a\r\nBLPOP l 1\r\nPING\r\n");
  const std::string full =
      "-DEDICATEDFULL all 0 dedicated upstream connections of service 'test' are in use "
      "(pool.max_dedicated); try again later\r\n";
  const std::string want =
      full +
      "-EXECABORT Transaction discarded because its connection to the master was lost; EXEC "
      "or DISCARD ends it\r\n"
      "-EXECABORT Transaction discarded because its connection to the master was lost (e.g. "
      "a failover); none of it ran\r\n"
      "$-1\r\n" +
      full + "+PONG\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK_FALSE(f.closed);
}

TEST_CASE("pinning: refused by a demoted master inside a WATCH: the rest never runs elsewhere") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("WATCH w\r\n");
  CHECK(f.receive(5) == "+OK\r\n");
  // The master is demoted under the dedicated connection (as Sentinel does).
  CHECK(direct(redis.port(), "REPLICAOF 127.0.0.1 1") == "OK");
  f.send("MULTI\r\nSET w mine\r\nEXEC\r\n");
  const std::string want =
      "+OK\r\n"
      "-EXECABORT Transaction discarded because its connection to the master was lost; EXEC "
      "or DISCARD ends it\r\n"
      "-EXECABORT Transaction discarded because its connection to the master was lost (e.g. "
      "a failover); none of it ran\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(direct(redis.port(), "REPLICAOF NO ONE") == "OK");
  CHECK(direct(redis.port(), "EXISTS w") == "0");
  CHECK_FALSE(f.closed);
}

TEST_CASE("pinning: a blocked command waits out a pause, abandoning the master answers it") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("BLPOP q 5\r\nPING\r\n");
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 1; }));
  f.pump(50ms);
  // A pause drains the dedicated connection: what was written may still be answered.
  f.pool->pause("failover of test in progress");
  f.pump(100ms);
  CHECK(f.receive(1, nullptr, 50ms).empty());
  // The failover abandons the old master: the connection closes at once. BLPOP was
  // written: its outcome is unknown. PING was written too or is sent again: either way
  // both get an answer, none hangs.
  f.pool->retarget(*tether::util::parse_endpoint("127.0.0.1:" + std::to_string(redis.port())),
                   tether::upstream::Pool::RetargetMode::abandon);
  auto got = f.receive(1000, nullptr, 1s);
  CHECK(got.starts_with("-OUTCOMEUNKNOWN "));
  CHECK((got.ends_with("+PONG\r\n") || got.find("-OUTCOMEUNKNOWN ", 5) != std::string::npos));
  f.send("PING\r\n");
  CHECK(f.receive(7) == "+PONG\r\n");
}

TEST_CASE("pinning: at a pause, commands in flight get their real replies, later ones wait") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  CHECK(direct(redis.port(), "SET k v") == "OK");
  f.send("BLPOP q 0.3\r\nGET k\r\n");
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 1; }));
  f.pump(50ms);
  f.pool->pause("failover of test in progress");
  // Both were written before the pause: the old master answers them, as Redis would.
  const std::string want = "*-1\r\n$1\r\nv\r\n";
  CHECK(f.receive(want.size()) == want);
  // Then the drained connection closes and is not replaced while the pause lasts.
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));
  f.send("BLPOP q 0.1\r\n");
  f.pump(50ms);
  CHECK(f.receive(1, nullptr, 150ms).empty());
  CHECK(direct(redis.port(), "INFO commandstats").find("cmdstat_blpop:calls=1,") !=
        std::string::npos);
  f.pool->resume();
  CHECK(f.receive(5) == "*-1\r\n");
  CHECK(direct(redis.port(), "INFO commandstats").find("cmdstat_blpop:calls=2,") !=
        std::string::npos);
  CHECK_FALSE(f.closed);
}

TEST_CASE("pinning: a transaction whose connection is lost ends in EXECABORT, none of it ran") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("MULTI\r\nSET a 1\r\n");
  CHECK(f.receive(14) == "+OK\r\n+QUEUED\r\n");
  // A failover begins: nothing more may reach this master, not even inside a transaction.
  f.pool->pause("failover of test in progress");
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));
  f.send("SET b 2\r\nEXEC\r\n");
  const std::string want =
      "-EXECABORT Transaction discarded because its connection to the master was lost; EXEC "
      "or DISCARD ends it\r\n"
      "-EXECABORT Transaction discarded because its connection to the master was lost (e.g. "
      "a failover); none of it ran\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(direct(redis.port(), "EXISTS a") == "0");
  CHECK(direct(redis.port(), "EXISTS b") == "0");
  // The next transaction, once the failover is over, runs normally.
  f.pool->resume();
  f.send("MULTI\r\nSET a 1\r\nEXEC\r\n");
  const std::string again = "+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n";
  CHECK(f.receive(again.size()) == again);
  CHECK_FALSE(f.closed);
}

TEST_CASE("pinning: a WATCH whose connection is lost makes EXEC fail as a changed key does") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  CHECK(direct(redis.port(), "SET w 1") == "OK");
  f.send("WATCH w\r\n");
  CHECK(f.receive(5) == "+OK\r\n");
  // A failover begins: the dedicated connection, and the WATCH with it, is gone.
  f.pool->pause("failover of test in progress");
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));
  f.pool->resume();
  // The keys are no longer watched, so the transaction must not run: EXEC answers nil, as
  // for a watched key that changed (a client doing optimistic locking retries). Commands
  // outside the transaction run as usual, and UNWATCH-free code paths see Redis's bytes.
  f.send("GET w\r\nMULTI\r\nSET w 2\r\nEXEC\r\nGET w\r\n");
  const std::string want = "$1\r\n1\r\n+OK\r\n+QUEUED\r\n*-1\r\n$1\r\n1\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(direct(redis.port(), "GET w") == "1");
  // The retry, with a new WATCH, runs.
  f.send("WATCH w\r\nMULTI\r\nSET w 2\r\nEXEC\r\n");
  const std::string again = "+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n";
  CHECK(f.receive(again.size()) == again);
  CHECK(direct(redis.port(), "GET w") == "2");
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));
  CHECK_FALSE(f.closed);
}

TEST_CASE("pinning: UNWATCH after a lost WATCH, then a transaction runs normally") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("WATCH w\r\n");
  CHECK(f.receive(5) == "+OK\r\n");
  f.pool->pause("failover of test in progress");
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));
  f.pool->resume();
  f.send("UNWATCH\r\nMULTI\r\nSET w 3\r\nEXEC\r\n");
  const std::string want = "+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(direct(redis.port(), "GET w") == "3");
}

TEST_CASE("pinning: EXEC or DISCARD without MULTI fails and leaves the WATCH, as in Redis") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("WATCH w\r\nEXEC\r\nDISCARD\r\n");
  const std::string want = "+OK\r\n-ERR EXEC without MULTI\r\n-ERR DISCARD without MULTI\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(direct(redis.port(), "SET w other") == "OK");
  f.send("MULTI\r\nSET w mine\r\nEXEC\r\n");
  const std::string fails = "+OK\r\n+QUEUED\r\n*-1\r\n";  // still watched: the write is seen
  CHECK(f.receive(fails.size()) == fails);
  CHECK(direct(redis.port(), "GET w") == "other");
}

TEST_CASE("pinning: WAIT runs on a dedicated connection after a PUBLISH that marks it") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("SET k 1\r\nWAIT 0 0\r\nGET k\r\n");
  const std::string want = "+OK\r\n:0\r\n$1\r\n1\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));  // given back
  // The PUBLISH went first on that connection (its reply dropped), so that WAIT counts
  // the acknowledgements of a write at least as recent as the client's SET.
  CHECK(direct(redis.port(), "INFO commandstats").find("cmdstat_publish:calls=1,") !=
        std::string::npos);
}

TEST_CASE("pinning: WAIT inside MULTI is queued alone, EXEC's reply as Redis gives it") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("MULTI\r\nSET k v\r\nWAIT 0 0\r\nEXEC\r\n");
  const std::string want = "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n:0\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(direct(redis.port(), "INFO commandstats").find("cmdstat_publish") == std::string::npos);
}
