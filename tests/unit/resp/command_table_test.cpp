// classify_command and upper_name.
#include "tether/resp/command_table.hpp"

#include <catch2/catch.hpp>

#include <string>

using tether::resp::classify_command;
using tether::resp::CommandClass;
using tether::resp::upper_name;

TEST_CASE("classify_command knows every listed command in any case", "[command_table]") {
  auto check = [](const char* name, CommandClass cls) {
    INFO(name);
    CHECK(classify_command(name) == cls);
    std::string lower(name);
    for (char& c : lower)
      c = static_cast<char>(c - 'A' + 'a');
    CHECK(classify_command(lower) == cls);
  };
  for (const char* name :
       {"MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH", "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE",
        "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP", "WAIT"}) {
    check(name, CommandClass::pinned);
  }
  for (const char* name :
       {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"}) {
    check(name, CommandClass::pubsub);
  }
  check("MONITOR", CommandClass::stateful);
  check("WAITAOF", CommandClass::pinned);  // as WAIT: counts the client's own writes
  for (const char* name : {"QUIT", "RESET", "AUTH", "HELLO", "SELECT"})  // answered by the proxy
    check(name, CommandClass::local);
  CHECK(classify_command("XREAD") == CommandClass::inspect);
  CHECK(classify_command("xReadGroup") == CommandClass::inspect);
  CHECK(classify_command("CLIENT") == CommandClass::inspect);
  CHECK(classify_command("quit") == CommandClass::local);
  CHECK(classify_command("Reset") == CommandClass::local);
  // They would turn a shared connection into a replication stream.
  for (const char* name : {"sync", "PSYNC"})
    CHECK(classify_command(name) == CommandClass::denied);
  // Topology commands are the configurable deny list's business, not the table's.
  for (const char* name : {"SHUTDOWN", "replicaof", "SlaveOf", "FAILOVER"})
    CHECK(classify_command(name) == CommandClass::shared);
}

TEST_CASE("classify_command: everything else is shared", "[command_table]") {
  for (const char* name : {"GET", "set", "INCR", "PING", "XADD", "EVAL", "", "MULTIX", "MULT",
                           "BLPOPX", "A", "ZZZZ", "SUBSCRIBEXXXXXXXXXXXXXXXXXXXXXXXXX"}) {
    INFO(name);
    CHECK(classify_command(name) == CommandClass::shared);
  }
  // Non-ASCII and embedded NUL never match.
  CHECK(classify_command(std::string("EXEC\0", 5)) == CommandClass::shared);
  CHECK(classify_command("\xc3\x89XEC") == CommandClass::shared);
}

TEST_CASE("upper_name", "[command_table]") {
  char buf[8];
  CHECK(upper_name("multi", buf, sizeof buf) == 5);
  CHECK(std::string(buf, 5) == "MULTI");
  CHECK(upper_name("MiXeD-1", buf, sizeof buf) == 7);
  CHECK(std::string(buf, 7) == "MIXED-1");
  CHECK(upper_name("toolongname", buf, sizeof buf) == 0);
  CHECK(upper_name("", buf, sizeof buf) == 0);
}

TEST_CASE("classify_request resolves XREAD/XREADGROUP by their BLOCK argument", "[command_table]") {
  using tether::resp::classify_request;
  using tether::resp::RequestScanner;
  using tether::resp::ScanStatus;
  auto classify = [](std::string_view bytes) {
    RequestScanner scanner;
    REQUIRE(scanner.scan(bytes) == ScanStatus::complete);
    return classify_request(bytes.substr(0, scanner.request().size), scanner.request());
  };
  CHECK(classify("XREAD block 0 STREAMS s $\r\n") == CommandClass::pinned);
  CHECK(classify("*6\r\n$10\r\nXREADGROUP\r\n$5\r\nGROUP\r\n$1\r\ng\r\n$1\r\nc\r\n"
                 "$5\r\nBlOcK\r\n$1\r\n0\r\n") == CommandClass::pinned);
  CHECK(classify("XREAD STREAMS s 0\r\n") == CommandClass::shared);
  CHECK(classify("XREAD STREAMS BLOCKS 0\r\n") == CommandClass::shared);
  CHECK(classify("XREAD COUNT 5 BLOCK 100 STREAMS s $\r\n") == CommandClass::pinned);
  // "block" as a key, a group, a consumer or a COUNT value is not the option.
  CHECK(classify("XREAD STREAMS block 0\r\n") == CommandClass::shared);
  CHECK(classify("XREAD COUNT block STREAMS s 0\r\n") == CommandClass::shared);
  CHECK(classify("XREADGROUP GROUP block c1 STREAMS s >\r\n") == CommandClass::shared);
  CHECK(classify("XREADGROUP GROUP g block NOACK STREAMS s >\r\n") == CommandClass::shared);
  CHECK(classify("XREADGROUP GROUP g c NOACK BLOCK 0 STREAMS s >\r\n") == CommandClass::pinned);
  // SCRIPT DEBUG would turn the shared connection into a debugger session.
  CHECK(classify("SCRIPT DEBUG YES\r\n") == CommandClass::stateful);
  CHECK(classify("script debug sync\r\n") == CommandClass::stateful);
  CHECK(classify("SCRIPT LOAD \"return 1\"\r\n") == CommandClass::shared);
  CHECK(classify("SCRIPT\r\n") == CommandClass::shared);
  CHECK(classify("WAITAOF 1 0 0\r\n") == CommandClass::pinned);
  // CLIENT SETNAME / GETNAME / ID / NO-EVICT / REPLY are the proxy's; other CLIENT
  // subcommands need a connection.
  CHECK(classify("client setname app\r\n") == CommandClass::local);
  CHECK(classify("CLIENT GETNAME\r\n") == CommandClass::local);
  CHECK(classify("CLIENT ID\r\n") == CommandClass::local);
  CHECK(classify("client no-evict on\r\n") == CommandClass::local);
  CHECK(classify("CLIENT REPLY OFF\r\n") == CommandClass::local);
  CHECK(classify("CLIENT LIST\r\n") == CommandClass::stateful);
  CHECK(classify("CLIENT TRACKING on\r\n") == CommandClass::stateful);
  CHECK(classify("CLIENT\r\n") == CommandClass::stateful);
  CHECK(classify("GET k\r\n") == CommandClass::shared);
  CHECK(classify("MULTI\r\n") == CommandClass::pinned);
  CHECK(classify("SUBSCRIBE c\r\n") == CommandClass::pubsub);
  CHECK(classify("PUBLISH c m\r\n") == CommandClass::shared);
}
