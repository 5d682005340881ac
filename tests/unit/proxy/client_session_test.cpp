#include "tether/proxy/client_session.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>

#include "redis_direct.hpp"
#include "redis_process.hpp"
#include "session_fixture.hpp"

using namespace std::chrono_literals;
using tether::proxy::ClientSession;
using tether::proxy::ListenerSettings;
using tether::testing::direct;
using tether::testing::RedisProcess;
using tether::upstream::Pool;

namespace {
using Fixture = tether::testing::SessionFixture;
}  // namespace

TEST_CASE("session: pipelined commands, replies in order") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nGET k\r\nINCR n\r\nINCR n\r\n");
  CHECK(f.receive(21) == "+OK\r\n$1\r\nv\r\n:1\r\n:2\r\n");
}

// Far more than the reads that follow a full one at once (util::ChainedReads::kMax) take:
// the session's input and the upstream connection's replies both go through several full
// reads in a row, then wait and read on.
TEST_CASE("session: a pipeline many reads long, and its replies, arrive whole and in order") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  const int keys = 300;
  auto value = [](int i) { return std::string(1000, static_cast<char>('a' + i % 26)); };
  auto bulk = [](const std::string& s) {
    return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n";
  };
  std::string sets, gets, oks, values;
  for (int i = 0; i < keys; ++i) {
    const std::string key = "k" + std::to_string(i);
    sets += "*3\r\n" + bulk("SET") + bulk(key) + bulk(value(i));
    gets += "*2\r\n" + bulk("GET") + bulk(key);
    oks += "+OK\r\n";
    values += bulk(value(i));
  }
  REQUIRE(sets.size() > 250 * 1024);
  f.send(sets);
  CHECK(f.receive(oks.size()) == oks);
  f.send(gets);
  CHECK(f.receive(values.size()) == values);
}

TEST_CASE("session: a reply produced early waits for the replies owed before it") {
  auto port = tether::testing::free_port();
  Fixture f(port, [](auto& ps) { ps.hold_max_bytes = 40; });
  f.open();
  // The first SET is held (no upstream yet); the second does not fit the hold and is
  // refused at once, but its error must not overtake the first reply.
  f.send("SET k " + std::string(20, 'x') + "\r\nSET k " + std::string(20, 'y') + "\r\n");
  f.pump(100ms);
  bool eof = false;
  CHECK(f.receive(1, &eof, 100ms).empty());
  RedisProcess redis(port);
  auto got = f.receive(10);
  CHECK(got.starts_with("+OK\r\n-HOLDFULL "));
  CHECK_FALSE(eof);
}

TEST_CASE("session: malformed request gets Redis's error after earlier replies, then EOF") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("PING\r\n*abc\r\nPING\r\n");
  bool eof = false;
  auto got = f.receive(1000, &eof);
  CHECK(got == "+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n");
  CHECK(eof);
  CHECK(f.closed);
  CHECK(f.metrics.service(0).client_closed[0]->Value() == 1);
}

TEST_CASE("session: stateful and denied commands are refused by name, connection kept") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("SCRIPT DEBUG YES\r\nXREAD STREAMS s 0\r\nSHUTDOWN\r\nPING\r\n");
  auto got = f.receive(1000, nullptr, 500ms);
  CHECK(got ==
        "-NOTSUPPORTED 'SCRIPT' needs a dedicated upstream connection, which this redis-tether "
        "version does not provide\r\n"
        "*-1\r\n"
        "-DENIED 'SHUTDOWN' is refused by redis-tether (services[].deny_commands)\r\n"
        "+PONG\r\n");
  CHECK_FALSE(f.closed);
}

TEST_CASE("session: CLIENT SETNAME, GETNAME and RESET are answered by the proxy") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send(
      "CLIENT GETNAME\r\nCLIENT SETNAME app-1\r\nclient getname\r\n"
      "CLIENT SETNAME \"a b\"\r\nCLIENT SETNAME\r\nCLIENT GETNAME x\r\nRESET\r\n"
      "CLIENT GETNAME\r\nPING\r\n");
  const std::string want =
      "$-1\r\n+OK\r\n$5\r\napp-1\r\n"
      "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
      "-ERR wrong number of arguments for 'client|setname' command\r\n"
      "-ERR wrong number of arguments for 'client|getname' command\r\n"
      "+RESET\r\n$-1\r\n+PONG\r\n";
  CHECK(f.receive(want.size()) == want);
}

TEST_CASE("session: CLIENT ID, NO-EVICT and REPLY are answered as Redis does") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  // Byte for byte what redis-server 7.0 answers to the same pipelines.
  f.send(
      "CLIENT ID x\r\nCLIENT NO-EVICT on\r\nCLIENT NO-EVICT OFF\r\nCLIENT NO-EVICT maybe\r\n"
      "CLIENT NO-EVICT\r\n");
  std::string want =
      "-ERR wrong number of arguments for 'client|id' command\r\n+OK\r\n+OK\r\n"
      "-ERR syntax error\r\n-ERR wrong number of arguments for 'client|no-evict' command\r\n";
  CHECK(f.receive(want.size()) == want);
  f.send(
      "CLIENT REPLY OFF\r\nPING\r\nSET k v\r\nCLIENT REPLY ON\r\nGET k\r\n"
      "CLIENT REPLY SKIP\r\nPING\r\nPING\r\nCLIENT REPLY SKIP\r\nCLIENT REPLY SKIP\r\n"
      "PING\r\nPING\r\nCLIENT REPLY SKIP\r\nCLIENT REPLY ON\r\nCLIENT REPLY maybe\r\n"
      "CLIENT REPLY\r\n");
  want =
      "+OK\r\n$1\r\nv\r\n+PONG\r\n+PONG\r\n+OK\r\n-ERR syntax error\r\n"
      "-ERR wrong number of arguments for 'client|reply' command\r\n";
  CHECK(f.receive(want.size()) == want);
  CHECK(direct(redis.port(), "GET k") == "v");  // run, only not answered
  // RESET turns replies on again; a SKIP just before it skips RESET's own reply.
  f.send("CLIENT REPLY OFF\r\nPING\r\nRESET\r\nPING\r\nCLIENT REPLY SKIP\r\nRESET\r\nPING\r\n");
  want = "+RESET\r\n+PONG\r\n+PONG\r\n";
  CHECK(f.receive(want.size()) == want);
  // CLIENT ID: a number, the same for the connection, another for another client.
  f.send("CLIENT ID\r\nCLIENT ID\r\n");
  auto ids = f.receive(8, nullptr, 1s);
  REQUIRE(ids.size() >= 8);
  const auto first = ids.substr(0, ids.find("\r\n") + 2);
  CHECK(first.starts_with(":"));
  CHECK(ids == first + first);
  CHECK_FALSE(f.closed);
}

TEST_CASE("session: the deny list is configurable") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.settings.deny_commands = {"FLUSHALL", "KEYS"};
  f.open();
  f.send("flushall\r\nKEYS *\r\nDBSIZE\r\n");
  const std::string want =
      "-DENIED 'FLUSHALL' is refused by redis-tether (services[].deny_commands)\r\n"
      "-DENIED 'KEYS' is refused by redis-tether (services[].deny_commands)\r\n"
      ":0\r\n";
  CHECK(f.receive(want.size()) == want);
}

TEST_CASE("session: QUIT answers +OK and closes") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.open();
  f.send("PING\r\nQUIT\r\nPING\r\n");
  bool eof = false;
  CHECK(f.receive(1000, &eof) == "+PONG\r\n+OK\r\n");
  CHECK(eof);
}

TEST_CASE("session: a request above max_request_bytes is refused and the client closed") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.settings.max_request_bytes = 1024;
  f.open();
  f.send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4000\r\n" + std::string(2000, 'x'));
  bool eof = false;
  auto got = f.receive(1000, &eof);
  CHECK(got == "-ERR Protocol error: request larger than the query buffer limit (1KiB)\r\n");
  CHECK(eof);
}

TEST_CASE("session: reading pauses while replies are unread and resumes as they drain") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.settings.max_pending = 8;
  f.settings.output_soft_limit = 64 * 1024;
  f.open();
  const std::string value(100 * 1024, 'v');
  f.send("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$" + std::to_string(value.size()) + "\r\n" + value +
         "\r\n");
  CHECK(f.receive(5) == "+OK\r\n");
  const auto& m = f.metrics.service(0);
  const double before = m.commands_forwarded->Value();
  std::string gets;
  for (int i = 0; i < 200; ++i)
    gets += "GET big\r\n";
  f.send(gets);
  f.pump(300ms);
  // The client reads nothing: once the socket buffer is full the proxy stops reading
  // from it, so only a few of the 200 requests have been forwarded.
  const double forwarded = m.commands_forwarded->Value() - before;
  CHECK(forwarded >= 1);
  CHECK(forwarded <= 8 + 10);  // max_pending, plus what the kernel buffer absorbed
  CHECK(m.reads_paused->Value() == 1);
  CHECK(m.buffer_out_bytes->Value() < 64 * 1024 + 8 * (value.size() + 16) + 2 * 64 * 1024);
  // Reading the replies lets it go on; every one arrives.
  const std::string one = "$" + std::to_string(value.size()) + "\r\n" + value + "\r\n";
  auto got = f.receive(200 * one.size(), nullptr, 10s);
  CHECK(got.size() == 200 * one.size());
  CHECK(m.commands_forwarded->Value() - before == 200);
  CHECK(m.reads_paused->Value() == 0);
}

TEST_CASE("session: past output_hard_limit the client is closed and counted") {
  RedisProcess redis;
  Fixture f(redis.port());
  f.settings.output_soft_limit = 1024;
  f.settings.output_hard_limit = 64 * 1024;
  f.open();
  const std::string value(100 * 1024, 'z');
  f.send("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$" + std::to_string(value.size()) + "\r\n" + value +
         "\r\n");
  CHECK(f.receive(5) == "+OK\r\n");
  // The client never reads: replies pile up in the proxy until the hard limit.
  std::string gets;
  for (int i = 0; i < 20; ++i)
    gets += "GET big\r\n";
  f.send(gets);
  auto end = std::chrono::steady_clock::now() + 5s;
  while (!f.closed && std::chrono::steady_clock::now() < end)
    f.pump(5ms);
  CHECK(f.closed);
  CHECK(f.metrics.service(0).client_closed[2]->Value() == 1);
}
