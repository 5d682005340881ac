// ClientSession in session mode (pool.mode: session), and RESET on a dedicated connection:
// the client's own upstream connection, and its state replayed on a replacement.
#include <catch2/catch.hpp>

#include "redis_direct.hpp"
#include "redis_process.hpp"
#include "session_fixture.hpp"

using namespace std::chrono_literals;
using tether::testing::direct;
using tether::testing::free_port;
using tether::testing::RedisProcess;
using tether::testing::wait_for;
using Fixture = tether::testing::SessionFixture;

namespace {

// A fixture whose client connects in session mode.
struct SessionMode : Fixture {
  explicit SessionMode(std::uint16_t port,
                       std::function<void(tether::upstream::PoolSettings&)> tweak = nullptr)
      : Fixture(port, std::move(tweak)) {
    settings.session_mode = true;
  }
};

// Everything the client receives until `tail` ends it (or 2 s pass).
std::string receive_until(Fixture& f, std::string_view tail) {
  std::string got;
  for (int i = 0; i < 100 && !got.ends_with(tail); ++i)
    got += f.receive(1 << 20, nullptr, 20ms);
  return got;
}

}  // namespace

TEST_CASE("session mode: the client's connection is dialled when it connects, and kept") {
  RedisProcess redis;
  SessionMode f(redis.port());
  f.open();
  // Before any command.
  REQUIRE(wait_for(f, [&] { return f.pool->dedicated_in_use() == 1; }));
  f.send("SET k 1\r\nINCR k\r\nCLIENT SETNAME app\r\nCLIENT INFO\r\n");
  const auto info = receive_until(f, "\n\r\n");
  CHECK(info.starts_with("+OK\r\n:2\r\n+OK\r\n$"));
  // CLIENT INFO is Redis's, about the client's own connection, which carries its name.
  CHECK(info.find(" name=app ") != std::string::npos);
  CHECK(info.find(" cmd=client|info ") != std::string::npos);
  CHECK(f.pool->dedicated_in_use() == 1);
  // Idle, the connection stays the client's.
  f.pump(100ms);
  CHECK(f.pool->dedicated_in_use() == 1);
  f.send("GET k\r\n");
  CHECK(f.receive(7) == "$1\r\n2\r\n");
}

TEST_CASE("session mode: a lost connection is replaced with the client's state replayed") {
  RedisProcess redis;
  SessionMode f(redis.port());
  f.open();
  f.send("SELECT 3\r\nCLIENT SETNAME app\r\nHELLO 3\r\nSET k v\r\n");
  const auto setup = receive_until(f, "*0\r\n+OK\r\n");  // HELLO 3's map ends with modules
  CHECK(setup.starts_with("+OK\r\n+OK\r\n%7\r\n"));
  CHECK(setup.ends_with("+OK\r\n"));
  // The server drops every client connection but the caller's (as at a restart).
  REQUIRE(direct(redis.port(), "CLIENT KILL TYPE normal") != "0");
  REQUIRE(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));
  f.send("GET k\r\nCLIENT INFO\r\n");
  const auto info = receive_until(f, "\n\r\n");
  CHECK(info.starts_with("$1\r\nv\r\n="));  // database 3, then a RESP3 verbatim string
  CHECK(info.find(" name=app ") != std::string::npos);
  CHECK(info.find(" db=3 ") != std::string::npos);
  CHECK(info.find(" resp=3\n") != std::string::npos);
  // The replacement comes from database 3's pool, whose connections SELECT 3 first.
  CHECK(f.pools->pool(3).dedicated_in_use() == 1);
  CHECK_FALSE(f.closed);
}

TEST_CASE("session mode: after a retarget the client's state is replayed on the new master") {
  RedisProcess old_master;
  RedisProcess new_master;
  SessionMode f(old_master.port());
  f.open();
  f.send("SELECT 2\r\nCLIENT SETNAME app\r\nSET k old\r\n");
  CHECK(f.receive(15) == "+OK\r\n+OK\r\n+OK\r\n");
  f.pools->retarget(*tether::util::parse_endpoint("127.0.0.1:" + std::to_string(new_master.port())),
                    tether::upstream::Pool::RetargetMode::abandon);
  f.send("SET k new\r\nCLIENT INFO\r\n");
  const auto info = receive_until(f, "\n\r\n");
  CHECK(info.starts_with("+OK\r\n$"));
  CHECK(info.find(" name=app ") != std::string::npos);
  CHECK(info.find(" db=2 ") != std::string::npos);
  CHECK(direct(new_master.port(), "GET k", 2) == "new");
  CHECK(direct(old_master.port(), "GET k", 2) == "old");
}

TEST_CASE("session mode: RESET forwarded, the connection is logged in again, database 0") {
  RedisProcess redis(free_port(), {"--requirepass", "s3cret"});
  SessionMode f(redis.port(), [](tether::upstream::PoolSettings& s) { s.password = "s3cret"; });
  f.open();
  f.send("SELECT 1\r\nCLIENT SETNAME app\r\nSET k one\r\nMULTI\r\nSET k two\r\nRESET\r\n");
  CHECK(f.receive(33) == "+OK\r\n+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n+RESET\r\n");
  // RESET ended the transaction unrun, and the client is in database 0 with no name.
  f.send("GET k\r\nSELECT 1\r\nGET k\r\nCLIENT GETNAME\r\nCLIENT INFO\r\n");
  const auto info = receive_until(f, "\n\r\n");
  CHECK(info.starts_with("$-1\r\n+OK\r\n$3\r\none\r\n$-1\r\n$"));
  CHECK(info.find(" name= ") != std::string::npos);
  CHECK(info.find(" db=1 ") != std::string::npos);
  CHECK(info.find(" user=default ") != std::string::npos);
}

TEST_CASE("session mode: CLIENT TRACKING and MONITOR work") {
  RedisProcess redis;
  SessionMode f(redis.port());
  f.open();
  f.send("CLIENT TRACKING on\r\nCLIENT TRACKINGINFO\r\nPING\r\n");
  const auto got = f.receive(1000, nullptr, 500ms);
  CHECK(got.starts_with("+OK\r\n*6\r\n$5\r\nflags\r\n*1\r\n$2\r\non\r\n"));
  CHECK(got.ends_with("+PONG\r\n"));
  f.send("CLIENT TRACKING off\r\n");
  CHECK(f.receive(5) == "+OK\r\n");
  f.send("MONITOR\r\n");
  CHECK(f.receive(5) == "+OK\r\n");
  REQUIRE(direct(redis.port(), "SET seen 1") == "OK");
  CHECK(f.receive(1 << 16, nullptr, 500ms).find("\"SET\" \"seen\" \"1\"\r\n") != std::string::npos);
}

TEST_CASE("pinning: RESET of a RESP3 client in database 1: later commands run in database 0") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  // Pipelined: SET is routed while the dedicated connection still carries the RESET.
  f.send("HELLO 3\r\nSELECT 1\r\nRESET\r\nSET k v\r\n");
  const auto got = f.receive(1000, nullptr, 1s);
  CHECK(got.ends_with("+OK\r\n+RESET\r\n+OK\r\n"));
  CHECK(direct(redis.port(), "EXISTS k") == "1");
  CHECK(direct(redis.port(), "EXISTS k", 1) == "0");
  // Back on the shared path once the RESET is answered.
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));
}

TEST_CASE("pinning: RESET inside MULTI discards the transaction on Redis too") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("MULTI\r\nSET a 1\r\nRESET\r\nSET b 2\r\n");
  CHECK(f.receive(30) == "+OK\r\n+QUEUED\r\n+RESET\r\n+OK\r\n");
  CHECK(direct(redis.port(), "EXISTS a") == "0");
  CHECK(direct(redis.port(), "EXISTS b") == "1");
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));
}

TEST_CASE("pub/sub: RESET of a subscriber in database 1: later commands run in database 0") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("SELECT 1\r\nSUBSCRIBE c\r\nRESET\r\nSET k v\r\n");
  const std::string want = "+OK\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n+RESET\r\n+OK\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(direct(redis.port(), "EXISTS k") == "1");
  CHECK(direct(redis.port(), "EXISTS k", 1) == "0");
}

TEST_CASE("pinning: CLIENT inside MULTI is refused and EXEC fails, none of it run") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("MULTI\r\nSET k v\r\nCLIENT SETNAME x\r\nEXEC\r\nCLIENT GETNAME\r\n");
  const std::string want =
      "+OK\r\n+QUEUED\r\n"
      "-NOTSUPPORTED 'CLIENT' inside MULTI: redis-tether answers it itself and cannot queue it "
      "in the transaction\r\n"
      "-EXECABORT Transaction discarded because of previous errors.\r\n$-1\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(direct(redis.port(), "EXISTS k") == "0");
}

TEST_CASE("monitor: the feed goes out in order with replies, and survives a lost connection") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("MONITOR\r\n");
  CHECK(f.receive(5) == "+OK\r\n");
  REQUIRE(direct(redis.port(), "SET seen 1") == "OK");
  const auto line = f.receive(1 << 16, nullptr, 500ms);
  CHECK(line.starts_with("+"));
  CHECK(line.find("\"SET\" \"seen\" \"1\"\r\n") != std::string::npos);
  // The connection that carries the feed is dropped (a restart, a failover): the feed
  // goes on from a new one.
  REQUIRE(direct(redis.port(), "CLIENT KILL TYPE monitor") != "0");
  f.pump(200ms);
  REQUIRE(wait_for(f, [&] { return f.pool->dedicated_in_use() == 1; }));
  f.receive(1 << 16, nullptr, 200ms);  // whatever the feed showed meanwhile
  REQUIRE(direct(redis.port(), "SET again 2") == "OK");
  const auto more = f.receive(1 << 16, nullptr, 500ms);
  CHECK(more.find("\"SET\" \"again\" \"2\"\r\n") != std::string::npos);
  CHECK(more.find("+OK\r\n") == std::string::npos);  // the new MONITOR's +OK is swallowed
  // RESET ends it; the client is back on the shared path.
  f.send("RESET\r\nPING\r\n");
  const auto tail = f.receive(1 << 16, nullptr, 500ms);
  CHECK(tail.ends_with("+RESET\r\n+PONG\r\n"));
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));
  REQUIRE(direct(redis.port(), "SET after 3") == "OK");
  CHECK(f.receive(1 << 16, nullptr, 200ms).empty());
  CHECK_FALSE(f.closed);
}

TEST_CASE("monitor: refused inside MULTI (EXEC fails), a subscriber gets Redis's refusal") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("MULTI\r\nSET k v\r\nMONITOR\r\nEXEC\r\n");
  const std::string want =
      "+OK\r\n+QUEUED\r\n-NOTSUPPORTED 'MONITOR' inside MULTI is not supported by "
      "redis-tether: monitor before MULTI or after EXEC\r\n"
      "-EXECABORT Transaction discarded because of previous errors.\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(direct(redis.port(), "EXISTS k") == "0");
  f.send("SUBSCRIBE c\r\nMONITOR\r\n");
  const std::string refused =
      "*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n-ERR Can't execute 'monitor': only "
      "(P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n";
  CHECK(f.receive(refused.size()) == refused);
  // Still a subscriber, not a monitor.
  CHECK(direct(redis.port(), "PUBLISH c m") == "1");
  CHECK(f.receive(1 << 16, nullptr, 300ms) == "*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n");
}

TEST_CASE("tracking: RESP3 invalidations reach the client, and tracking survives a loss") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("HELLO 3\r\nCLIENT TRACKING ON\r\nGET a\r\n");
  CHECK(receive_until(f, "*0\r\n+OK\r\n_\r\n").starts_with("%7\r\n"));  // HELLO's map
  REQUIRE(direct(redis.port(), "SET a 1") == "OK");
  CHECK(f.receive(1 << 16, nullptr, 500ms) == ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\na\r\n");
  // The connection is dropped: the client is told to forget everything it tracked, and
  // tracking is on again on the next connection.
  REQUIRE(direct(redis.port(), "CLIENT KILL TYPE normal") != "0");
  CHECK(f.receive(1 << 16, nullptr, 500ms) == ">2\r\n$10\r\ninvalidate\r\n_\r\n");
  f.send("GET a\r\n");
  CHECK(f.receive(7) == "$1\r\n1\r\n");
  REQUIRE(direct(redis.port(), "SET a 2") == "OK");
  CHECK(f.receive(1 << 16, nullptr, 500ms) == ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\na\r\n");
  // Off: no more invalidations.
  f.send("CLIENT TRACKING OFF\r\nGET a\r\n");
  CHECK(f.receive(12) == "+OK\r\n$1\r\n2\r\n");
  REQUIRE(direct(redis.port(), "SET a 3") == "OK");
  CHECK(f.receive(1 << 16, nullptr, 300ms).empty());
}

TEST_CASE("tracking: REDIRECT is refused, RESP2 BCAST on and off as in Redis") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send(
      "CLIENT TRACKING ON REDIRECT 7\r\nCLIENT TRACKING ON BCAST\r\nSET a 1\r\n"
      "CLIENT TRACKING OFF\r\nCLIENT TRACKING maybe\r\nPING\r\n");
  const std::string want =
      "-NOTSUPPORTED 'CLIENT TRACKING' with REDIRECT is not supported by redis-tether: use "
      "RESP3 (HELLO 3) and tracking without REDIRECT\r\n"
      "+OK\r\n+OK\r\n+OK\r\n-ERR syntax error\r\n+PONG\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 0; }));
}
TEST_CASE("tracking: a RESP3 subscriber that tracks keys leaves relay mode when it unsubscribes") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("HELLO 3\r\nCLIENT TRACKING ON\r\nSUBSCRIBE c\r\nUNSUBSCRIBE c\r\n");
  const auto setup = receive_until(f, ":0\r\n");
  INFO(setup);
  f.pump(100ms);
  f.send("MULTI\r\n");
  const auto multi = f.receive(5, nullptr, 1s);
  CHECK(multi == "+OK\r\n");  // Redis: +OK
  f.send("DISCARD\r\n");
  f.receive(1 << 16, nullptr, 300ms);
  // Own invalidation arrives after SET's reply, while PING is outstanding.
  f.send("GET a\r\nSET a 1\r\nPING\r\n");
  const auto got = f.receive(1 << 16, nullptr, 1s);
  CHECK(got == "_\r\n+OK\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\na\r\n+PONG\r\n");
}

TEST_CASE("tracking: a refused CLIENT TRACKING leaves the tracking that was on") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("HELLO 3\r\nCLIENT TRACKING ON\r\n");
  receive_until(f, "*0\r\n+OK\r\n");
  f.send("CLIENT TRACKING ON BCAST\r\nGET a\r\n");
  const auto setup = receive_until(f, "_\r\n");
  INFO(setup);
  CHECK(setup.find("-ERR") != std::string::npos);
  REQUIRE(direct(redis.port(), "CLIENT KILL TYPE normal") != "0");
  // Redis still tracked: the client must be told to flush its cache.
  CHECK(f.receive(1 << 16, nullptr, 500ms) == ">2\r\n$10\r\ninvalidate\r\n_\r\n");
  f.send("GET a\r\n");
  CHECK(f.receive(3) == "_\r\n");
  REQUIRE(direct(redis.port(), "SET a 2") == "OK");
  CHECK(f.receive(1 << 16, nullptr, 500ms) == ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\na\r\n");
}

TEST_CASE("tracking: RESET turns it off, also while no connection is held") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("HELLO 3\r\nCLIENT TRACKING ON\r\nGET a\r\n");
  receive_until(f, "*0\r\n+OK\r\n_\r\n");
  REQUIRE(direct(redis.port(), "CLIENT KILL TYPE normal") != "0");
  CHECK(f.receive(1 << 16, nullptr, 500ms) == ">2\r\n$10\r\ninvalidate\r\n_\r\n");
  f.send("RESET\r\n");
  CHECK(f.receive(8) == "+RESET\r\n");
  f.send("HELLO 3\r\nCLIENT TRACKINGINFO\r\n");
  const auto info = receive_until(f, "\r\n$-1\r\n");  // unused
  INFO(info);
  // After RESET tracking is off: TRACKINGINFO flags must be "off".
  CHECK(info.find("$3\r\noff\r\n") != std::string::npos);
}

TEST_CASE("tracking: a RESP3 subscriber that tracks keys is told to forget them after a loss") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("HELLO 3\r\nCLIENT TRACKING ON\r\nGET a\r\nSUBSCRIBE c\r\n");
  receive_until(f, ":1\r\n");
  REQUIRE(direct(redis.port(), "SET a 1") == "OK");
  CHECK(f.receive(1 << 16, nullptr, 500ms) == ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\na\r\n");
  REQUIRE(direct(redis.port(), "CLIENT KILL TYPE pubsub") != "0");
  const auto after_loss = f.receive(1 << 16, nullptr, 800ms);
  CHECK(after_loss == ">2\r\n$10\r\ninvalidate\r\n_\r\n");  // as on the non-relay path
  f.send("GET a\r\n");
  CHECK(f.receive(7) == "$1\r\n1\r\n");
  REQUIRE(direct(redis.port(), "SET a 2") == "OK");
  CHECK(f.receive(1 << 16, nullptr, 500ms) == ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\na\r\n");
}

TEST_CASE("monitor: after RESET a pipelined command runs logged in (upstream password)") {
  RedisProcess redis(free_port(), {"--requirepass", "s3cret"});
  Fixture f(redis.port(), [](tether::upstream::PoolSettings& s) { s.password = "s3cret"; });
  f.open();
  f.send("SET k v\r\n");
  CHECK(f.receive(5) == "+OK\r\n");
  f.send("MONITOR\r\n");
  // +OK, then maybe the feed's lines (the warm set refilling, dialled with AUTH).
  CHECK(f.receive(1 << 16, nullptr, 300ms).starts_with("+OK\r\n"));
  f.send("RESET\r\nGET k\r\n");
  const auto got = f.receive(1 << 16, nullptr, 1s);
  INFO(got);
  CHECK(got.ends_with("+RESET\r\n$1\r\nv\r\n"));
}

TEST_CASE("pub/sub: SUBSCRIBE refused inside MULTI makes EXEC fail") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("MULTI\r\nSET k v\r\nSUBSCRIBE c\r\nEXEC\r\n");
  const auto got = f.receive(1 << 16, nullptr, 1s);
  INFO(got);
  CHECK(got.ends_with("-EXECABORT Transaction discarded because of previous errors.\r\n"));
  CHECK(direct(redis.port(), "EXISTS k") == "0");
}

TEST_CASE("monitor: a second MONITOR is answered with nothing, the feed goes on") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("MONITOR\r\n");
  CHECK(f.receive(5) == "+OK\r\n");
  f.send("MONITOR\r\nPING\r\n");
  const auto got = f.receive(1 << 16, nullptr, 500ms);
  INFO(got);
  CHECK(got.starts_with("+PONG\r\n"));  // then the feed's own line for it
  REQUIRE(direct(redis.port(), "SET seen 1") == "OK");
  CHECK(f.receive(1 << 16, nullptr, 500ms).find("\"SET\" \"seen\" \"1\"\r\n") != std::string::npos);
}

TEST_CASE("monitor: RESET after WATCH and MONITOR returns the client to normal") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("WATCH k\r\nMONITOR\r\n");
  CHECK(f.receive(10) == "+OK\r\n+OK\r\n");
  f.send("RESET\r\n");
  CHECK(f.receive(1 << 16, nullptr, 500ms).ends_with("+RESET\r\n"));
  f.pump(100ms);
  f.send("MULTI\r\n");
  CHECK(f.receive(1 << 16, nullptr, 500ms) == "+OK\r\n");
}

TEST_CASE("tracking: pipelined CLIENT TRACKING commands get Redis's replies in order") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("HELLO 3\r\nCLIENT TRACKING ON\r\nCLIENT TRACKING ON BCAST\r\nGET a\r\n");
  const auto got = receive_until(f, "_\r\n");
  // Redis: +OK for ON, -ERR for the switch to BCAST.
  CHECK(got.ends_with(
      "*0\r\n+OK\r\n-ERR You can't switch BCAST mode on/off before disabling "
      "tracking for this client, and then re-enabling it with a different mode.\r\n_\r\n"));
}

TEST_CASE(
    "pinning: EXEC of a transaction with a refusal, its connection lost: EXECABORT, never +OK") {
  RedisProcess redis;
  RedisProcess other;
  Fixture f(redis.port());
  f.open();
  f.send("MULTI\r\n");
  CHECK(f.receive(5) == "+OK\r\n");
  // The master is demoted under the client's transaction (a failover).
  REQUIRE(direct(redis.port(), ("REPLICAOF 127.0.0.1 " + std::to_string(other.port())).c_str()) ==
          "OK");
  f.send("SET k v\r\nCLIENT SETNAME x\r\nEXEC\r\n");
  const auto got = f.receive(1 << 16, nullptr, 1s);
  INFO(got);
  // EXEC must never be answered +OK (an array, nil or an error).
  CHECK_FALSE(got.ends_with("+OK\r\n"));
  CHECK(
      got.ends_with("-EXECABORT Transaction discarded because its connection to the master "
                    "was lost (e.g. a failover); none of it ran\r\n"));
}

TEST_CASE("pinning: a RESET settled after a lost MULTI does not undo a later HELLO 3") {
  RedisProcess redis;
  RedisProcess other;
  Fixture f(redis.port());
  f.open();
  f.send("MULTI\r\n");
  CHECK(f.receive(5) == "+OK\r\n");
  REQUIRE(direct(redis.port(), ("REPLICAOF 127.0.0.1 " + std::to_string(other.port())).c_str()) ==
          "OK");
  f.send("SET k v\r\nRESET\r\nHELLO 3\r\nPING\r\n");
  f.pump(300ms);
  REQUIRE(direct(redis.port(), "REPLICAOF NO ONE") == "OK");  // the new master
  const auto got = receive_until(f, "+PONG\r\n");
  INFO(got);
  CHECK(got.find("+RESET\r\n%7") != std::string::npos);  // HELLO 3 answered in RESP3
  // The client speaks RESP3 now: a missing key is _ (RESP3 null).
  f.send("GET nokey\r\n");
  CHECK(f.receive(1 << 16, nullptr, 1s) == "_\r\n");
}

TEST_CASE("session mode: a subscriber that unsubscribes gets a new connection at once") {
  RedisProcess redis;
  SessionMode f(redis.port());
  f.open();
  f.send("CLIENT SETNAME app\r\nSUBSCRIBE c\r\nUNSUBSCRIBE c\r\n");
  receive_until(f, ":0\r\n");
  // The relay-mode connection is released and the next one requested at once.
  CHECK(wait_for(f, [&] { return f.pool->dedicated_in_use() == 1; }));
  f.pump(100ms);
  CHECK(f.pool->dedicated_in_use() == 1);
  f.send("CLIENT INFO\r\n");
  const auto info = receive_until(f, "\n\r\n");
  CHECK(info.find(" name=app ") != std::string::npos);  // replayed there
  CHECK(info.find(" sub=0 ") != std::string::npos);
}
