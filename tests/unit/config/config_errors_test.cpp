// Error reporting: every kind of problem names its key path and line, and all of them are
// reported in one pass.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "config_test_support.hpp"
#include "tether/config/config.hpp"

using namespace tether::config;
using namespace tether::config::test;

TEST_CASE("every error in a file is reported at once, in line order") {
  auto result = load(yaml(R"(
log_level: loud
workers: 0
colour: blue
admin:
  listen: unix:/run/admin.sock
  port: 9121
services:
  - name: main
    listen: 127.0.0.1:6379
    upstream: 127.0.0.1:6380
    pool:
      size: -2
      sise: 3
      connect_timeout: 5
      reconnect_min: 2s
      reconnect_max: 1s
    hold:
      timeout: {a: 1}
      max_bytes: lots
    limits:
      max_clients: 0
      max_pending: [1, 2]
      output_soft_limit: 2GiB
      max_bulk_len: -1
      max_inline_len: 0
      max_multibulk_len: 2147483648
  - name: main
    listen: 127.0.0.1:6379
    listen_mode: "0999"
    upstream: nowhere
  - listen: 127.0.0.1:7000
)"));
  INFO(dump(result));
  CHECK_FALSE(result.config);
  require_error(result, "log_level", 1, "expected one of: trace, debug, info, warn, error");
  require_error(result, "workers", 2, "must be from 1 to 64, got 0");
  require_error(result, "colour", 3,
                "unknown key; expected one of: log_level, workers, drain_timeout, admin, services");
  require_error(result, "admin.listen", 5, "must be a TCP host:port");
  require_error(result, "admin.port", 6, "unknown key; expected one of: listen");
  require_error(result, "services[0].pool.size", 12, "must not be negative, got '-2'");
  require_error(result, "services[0].pool.sise", 13, "unknown key (did you mean 'size'?)");
  require_error(result, "services[0].pool.connect_timeout", 14, "expected a duration with a unit");
  require_error(result, "services[0].pool.reconnect_min", 15,
                "reconnect_min (2s) must not exceed reconnect_max (1s)");
  require_error(result, "services[0].hold.timeout", 18, "got a mapping");
  require_error(result, "services[0].hold.max_bytes", 19, "expected a size such as");
  require_error(result, "services[0].limits.max_clients", 21, "must be greater than zero");
  require_error(result, "services[0].limits.max_pending", 22,
                "expected a whole number, got a list");
  require_error(result, "services[0].limits.output_soft_limit", 23,
                "output_soft_limit (2GiB) must not exceed output_hard_limit (1GiB)");
  require_error(result, "services[0].limits.max_bulk_len", 24, "must not be negative");
  require_error(result, "services[0].limits.max_inline_len", 25, "must be from 1B to 64KiB, got 0");
  require_error(result, "services[0].limits.max_multibulk_len", 26,
                "must be from 1 to 2147483647, got 2147483648");
  require_error(result, "services[1].name", 27, "duplicate service name 'main'");
  require_error(result, "services[1].listen", 28, "already used by services[0].listen (line 9)");
  require_error(result, "services[1].listen_mode", 29, "expected an octal file mode");
  require_error(result, "services[1].upstream", 30, "invalid address 'nowhere'");
  require_error(result, "services[2].name", 31, "required key is missing");
  require_error(result, "services[2].upstream", 31, "required key is missing");
  CHECK(result.errors.size() == 23);
  for (std::size_t i = 1; i < result.errors.size(); ++i) {
    CHECK(result.errors[i - 1].line <= result.errors[i].line);
  }
}

TEST_CASE("wrong node types name what was expected and what was found") {
  auto result = load(yaml(R"(
workers:
  - 1
services:
  - name: {first: a}
    listen: 127.0.0.1:6379
    upstream: 127.0.0.1:6380
    pool: 3
    hold: [1]
    limits:
  - just a string
  -
)"));
  INFO(dump(result));
  require_error(result, "workers", 1, "expected a whole number, got a list");
  require_error(result, "services[0].name", 4, "expected a string, got a mapping");
  require_error(result, "services[0].pool", 7, "expected a mapping of key: value lines, got '3'");
  require_error(result, "services[0].hold", 8, "got a list");
  require_error(result, "services[1]", 10, "got 'just a string'");
  CHECK(result.errors.size() == 6);  // and services[2], an empty item
}

TEST_CASE("services must be a non-empty list") {
  for (const char* text : {"services:\n", "services: []\n", "services:\n  name: main\n"}) {
    auto result = load(text);
    INFO(text << dump(result));
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].path == "services");
    CHECK(result.errors[0].line == 1);
  }
  CHECK(load("services:\n  name: main\n").errors[0].message.find("got a mapping") !=
        std::string::npos);
}

TEST_CASE("missing required service keys are each named") {
  auto result = load("services:\n  - listen_mode: \"0600\"\n");
  INFO(dump(result));
  REQUIRE(result.errors.size() == 3);
  require_error(result, "services[0].name", 2, "required key is missing");
  require_error(result, "services[0].listen", 2, "expected host:port");
  require_error(
      result, "services[0].upstream", 2,
      "required key is missing; set upstream (a static master) or master_name and sentinels "
      "(Sentinel mode)");
}

TEST_CASE("duplicate YAML keys are errors") {
  auto result = load(std::string(kMinimal) + "workers: 2\nworkers: 3\n");
  INFO(dump(result));
  REQUIRE(result.errors.size() == 1);
  require_error(result, "workers", 6, "duplicate key; first set on line 5");
}

TEST_CASE("bad scalar values") {
  struct Case {
    const char* section;
    const char* key;
    const char* value;
    const char* words;
  };
  const Case cases[] = {
      {"pool", "size", "abc", "expected a whole number, got 'abc'"},
      {"pool", "size", "0", "must be from 1 to 1024, got 0"},
      {"pool", "size", "1025", "must be from 1 to 1024"},
      {"pool", "size", "1.5", "expected a whole number"},
      {"pool", "databases", "0", "must be from 1 to 1024, got 0"},
      {"pool", "databases", "1025", "must be from 1 to 1024, got 1025"},
      {"pool", "dedicated_warm", "1025", "must be from 0 to 1024, got 1025"},
      {"pool", "dedicated_warm", "-1", "must not be negative, got '-1'"},
      {"pool", "size", "99999999999999999999", "expected a whole number"},
      {"pool", "connect_timeout", "0", "must be greater than zero"},
      {"pool", "connect_timeout", "-1s", "must not be negative"},
      {"pool", "connect_timeout", "25h", "must be at most 24h"},
      {"pool", "connect_timeout", "5 fortnights", "expected a duration"},
      {"pool", "reconnect_min", "\"\"", "expected a duration"},
      {"pool", "reconnect_max", "~", "got an empty value"},
      {"hold", "max_bytes", "64XB", "expected a size such as 65536, 64KiB"},
      {"hold", "max_bytes", "99999999999GiB", "expected a size"},
      {"limits", "max_request_bytes", "0", "must be greater than zero"},
      {"limits", "output_hard_limit", "0B", "must be greater than zero"},
      {"limits", "max_bulk_len", "0", "must be greater than zero"},
      {"limits", "max_bulk_len", "9223372036854775808", "must be at most 9223372036854775807B"},
      {"limits", "max_inline_len", "65537", "must be from 1B to 64KiB, got 65537"},
      {"limits", "max_multibulk_len", "0", "must be from 1 to 2147483647"},
      {"limits", "max_multibulk_len", "64KiB", "expected a whole number"},
      {"limits", "max_pending", "-1", "must not be negative, got '-1'"},
  };
  for (const Case& c : cases) {
    std::string text =
        std::string(kMinimal) + "    " + c.section + ":\n      " + c.key + ": " + c.value + "\n";
    auto result = load(text);
    INFO(text);
    REQUIRE(result.errors.size() == 1);
    require_error(result, std::string("services[0].") + c.section + "." + c.key, 6, c.words);
  }
}

TEST_CASE("pool.dedicated_warm must not exceed pool.max_dedicated when set") {
  auto over =
      load(std::string(kMinimal) + "    pool:\n      max_dedicated: 3\n      dedicated_warm: 4\n");
  INFO(dump(over));
  REQUIRE(over.errors.size() == 1);
  require_error(over, "services[0].pool.dedicated_warm", 7,
                "dedicated_warm (4) must not exceed max_dedicated (3)");
  auto equal =
      load(std::string(kMinimal) + "    pool:\n      max_dedicated: 3\n      dedicated_warm: 3\n");
  INFO(dump(equal));
  REQUIRE(equal.config);
  CHECK(equal.config->services[0].pool.dedicated_warm == 3);
  // Left at its default (2), it does not make a smaller max_dedicated an error: the pool
  // then keeps only max_dedicated warm.
  auto unset = load(std::string(kMinimal) + "    pool:\n      max_dedicated: 0\n");
  INFO(dump(unset));
  REQUIRE(unset.config);
  CHECK(unset.config->services[0].pool.dedicated_warm == 2);
}

TEST_CASE("top-level values") {
  CHECK(load(std::string(kMinimal) + "workers: 65\n").errors.at(0).message ==
        "must be from 1 to 64, got 65");
  for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    auto result = load(std::string(kMinimal) + "log_level: " + level + "\n");
    INFO(level << dump(result));
    REQUIRE(result.config);
    CHECK(result.config->log_level == level);
  }
  auto verbose = load(std::string(kMinimal) + "log_level: INFO\n");
  REQUIRE(verbose.errors.size() == 1);
  CHECK(verbose.errors[0].message ==
        "expected one of: trace, debug, info, warn, error, critical, off, got 'INFO'");
  CHECK(load(std::string(kMinimal) + "log_level: \"\"\n").errors.at(0).message.find("empty") !=
        std::string::npos);
}

TEST_CASE("listen_mode is an octal string") {
  auto mode = [](const char* text) {
    return load(std::string(kMinimal) + "    listen_mode: " + text + "\n");
  };
  CHECK(mode("\"0660\"").config->services[0].listen_mode == 0660);
  CHECK(mode("0600").config->services[0].listen_mode == 0600);
  CHECK(mode("\"777\"").config->services[0].listen_mode == 0777);
  for (const char* bad : {"\"0999\"", "\"07777\"", "rw-rw----", "\"\"", "\"06600\""}) {
    INFO(bad);
    auto result = mode(bad);
    REQUIRE(result.errors.size() == 1);
    require_error(result, "services[0].listen_mode", 5, "expected an octal file mode");
  }
}

TEST_CASE("addresses") {
  auto with = [](const char* listen, const char* upstream) {
    return load(std::string("services:\n  - name: a\n    listen: ") + listen +
                "\n    upstream: " + upstream + "\n");
  };
  CHECK(with("\"[::1]:6379\"", "\"[2001:db8::1]:6380\"").config);
  CHECK(with("unix:/tmp/a.sock", "localhost:6380").config);
  require_error(with("127.0.0.1", "127.0.0.1:6380"), "services[0].listen", 3,
                "invalid address '127.0.0.1': expected host:port or unix:/path");
  require_error(with("127.0.0.1:0", "127.0.0.1:6380"), "services[0].listen", 3,
                "port must be a number from 1 to 65535");
  require_error(with("::1:6379", "127.0.0.1:6380"), "services[0].listen", 3, "brackets");
  require_error(with("127.0.0.1:6379", "127.0.0.1:6379"), "services[0].upstream", 4,
                "the proxy would connect to itself");
  require_error(with("127.0.0.1:6379", "{host: a}"), "services[0].upstream", 4, "got a mapping");
}

TEST_CASE("admin.listen must not reuse a service's address") {
  auto result = load(std::string(kMinimal) + "admin:\n  listen: 127.0.0.1:6379\n");
  INFO(dump(result));
  REQUIRE(result.errors.size() == 1);
  require_error(result, "admin.listen", 6, "already used by services[0].listen (line 3)");
  CHECK(load(std::string(kMinimal) + "admin: 9121\n").errors.at(0).path == "admin");
}

TEST_CASE("service names are log fields and metric labels") {
  auto named = [](const std::string& name) {
    return load(std::string("services:\n  - name: ") + name +
                "\n    listen: 127.0.0.1:6379\n    upstream: 127.0.0.1:6380\n");
  };
  CHECK(named("Main_1.eu-west").config);
  CHECK(named(std::string(64, 'a')).config);
  for (std::string bad : {"\"two words\"", "\"a=b\"", "\"\"", "\"x\\\"y\"", "é"}) {
    INFO(bad);
    auto result = named(bad);
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].path == "services[0].name");
  }
  {
    auto result = named(std::string(65, 'a'));
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].message.starts_with("expected 1 to 64 letters"));
    CHECK(result.errors[0].line == 2);
  }
}

TEST_CASE("every Sentinel-mode error is reported at once, in line order") {
  auto result = load(yaml(R"(
services:
  - name: a
    listen: 127.0.0.1:26379
    upstream: 127.0.0.1:6380
    master_name: mymaster
    sentinels:
      - 127.0.0.1:26379
      - unix:/tmp/sentinel.sock
      - 127.0.0.1:26380
      - 127.0.0.1:26380
      - nowhere
      - {host: a}
    sentinel_username: watcher
    failover:
      poll_interval: 5ms
      hold_bound: 0s
      hold_boundd: 1s
  - name: b
    listen: 127.0.0.1:7001
    sentinels: [127.0.0.1:26379]
    sentinel_password: pa55
    failover:
      hold_bound: 1s
  - name: c
    listen: 127.0.0.1:7002
    master_name: ""
    sentinels: []
  - name: d
    listen: 127.0.0.1:7003
    master_name: m
    sentinel_password: x
    sentinel_password_file: /nonexistent/sentinel.pw
    mastr_name: x
)"));
  INFO(dump(result));
  CHECK_FALSE(result.config);
  require_error(result, "services[0].master_name", 5,
                "cannot be combined with upstream (line 4); set upstream (a static master) or "
                "master_name and sentinels (Sentinel mode), not both");
  require_error(result, "services[0].sentinels[0]", 7,
                "is the same address as listen; the proxy would ask itself for the master");
  require_error(result, "services[0].sentinels[1]", 8, "must be a TCP host:port");
  require_error(result, "services[0].sentinels[3]", 10,
                "duplicate Sentinel address 127.0.0.1:26380; already listed as "
                "services[0].sentinels[2] (line 9)");
  require_error(result, "services[0].sentinels[4]", 11,
                "invalid address 'nowhere': expected host:port or [ipv6]:port");
  require_error(result, "services[0].sentinels[5]", 12,
                "expected a Sentinel address such as 127.0.0.1:26379, got a mapping");
  require_error(result, "services[0].sentinel_username", 13,
                "needs sentinel_password or sentinel_password_file");
  require_error(result, "services[0].failover.poll_interval", 15, "must be at least 10ms, got 5ms");
  require_error(result, "services[0].failover.hold_bound", 16, "must be greater than zero, got 0s");
  require_error(result, "services[0].failover.hold_boundd", 17,
                "unknown key (did you mean 'hold_bound'?); expected one of: poll_interval, "
                "hold_bound");
  require_error(result, "services[1].upstream", 18,
                "required key is missing; set upstream (a static master) or master_name and "
                "sentinels (Sentinel mode)");
  require_error(result, "services[1].sentinels", 20, "needs master_name: only Sentinel mode");
  require_error(result, "services[1].sentinel_password", 21, "needs master_name");
  require_error(result, "services[1].failover", 22, "needs master_name");
  require_error(result, "services[2].master_name", 26,
                "expected 1 to 128 characters without spaces");
  require_error(result, "services[2].sentinels", 27, "must list at least one Sentinel address");
  require_error(result, "services[3].sentinels", 28,
                "required key is missing; expected a list of Sentinel addresses");
  require_error(result, "services[3].sentinel_password_file", 32,
                "cannot be combined with sentinel_password (line 31)");
  require_error(result, "services[3].mastr_name", 33, "unknown key (did you mean 'master_name'?)");
  CHECK(result.errors.size() == 19);
  for (std::size_t i = 1; i < result.errors.size(); ++i) {
    CHECK(result.errors[i - 1].line <= result.errors[i].line);
  }
  for (const auto& e : result.errors) {
    INFO(e.message);
    CHECK(e.message.find("pa55") == std::string::npos);
  }
}

TEST_CASE("a service sets exactly one of upstream and master_name") {
  auto both = load(std::string(kMinimalSentinel) + "    upstream: 127.0.0.1:6380\n");
  INFO(dump(both));
  REQUIRE(both.errors.size() == 1);
  require_error(both, "services[0].master_name", 4,
                "cannot be combined with upstream (line 6); set upstream (a static master) or "
                "master_name and sentinels (Sentinel mode), not both");

  auto neither = load("services:\n  - name: a\n    listen: 127.0.0.1:6379\n");
  REQUIRE(neither.errors.size() == 1);
  require_error(neither, "services[0].upstream", 2,
                "required key is missing; set upstream (a static master) or master_name and "
                "sentinels (Sentinel mode)");

  auto no_sentinels =
      load("services:\n  - name: a\n    listen: 127.0.0.1:6379\n    master_name: m\n");
  REQUIRE(no_sentinels.errors.size() == 1);
  require_error(no_sentinels, "services[0].sentinels", 2,
                "required key is missing; expected a list of Sentinel addresses such as "
                "[127.0.0.1:26379, 127.0.0.1:26380]");
}

TEST_CASE("Sentinel keys without master_name are errors, not ignored") {
  for (const char* lines : {"    sentinels: [127.0.0.1:26379]\n", "    sentinel_username: w\n",
                            "    sentinel_password: x\n", "    sentinel_password_file: pw\n",
                            "    failover:\n", "    failover:\n      poll_interval: 1s\n"}) {
    auto result = load(std::string(kMinimal) + lines);
    INFO(lines << dump(result));
    REQUIRE(result.errors.size() == 1);
    std::string key(lines + 4, std::string_view(lines + 4).find(':'));
    require_error(result, "services[0]." + key, 5,
                  "needs master_name: only Sentinel mode uses it, and without master_name the "
                  "service asks no Sentinel");
  }
}

TEST_CASE("master_name is one word Sentinel knows") {
  auto named = [](const std::string& value) {
    return load(yaml(R"(
services:
  - name: main
    listen: 127.0.0.1:6379
    sentinels: [127.0.0.1:26379]
    master_name: )") +
                value + "\n");
  };
  for (const std::string& good : std::vector<std::string>{"mymaster", "Redis-Main_1.eu", "\"123\"",
                                                          "名前", std::string(128, 'm')}) {
    INFO(good);
    auto result = named(good);
    INFO(dump(result));
    REQUIRE(result.config);
  }
  CHECK(named("\"123\"").config->services[0].master_name == "123");
  for (const std::string& bad : std::vector<std::string>{"\"two words\"", "\"\"", "\"tab\\there\"",
                                                         "\" lead\"", std::string(129, 'm')}) {
    INFO(bad);
    auto result = named(bad);
    REQUIRE(result.errors.size() == 1);
    require_error(result, "services[0].master_name", 5,
                  "expected 1 to 128 characters without spaces or control characters (the name "
                  "the Sentinels monitor");
  }
  require_error(named("{a: 1}"), "services[0].master_name", 5, "expected a string, got a mapping");
  require_error(named("~"), "services[0].master_name", 5, "expected a string, got an empty value");
}

TEST_CASE("sentinels is a non-empty list of distinct TCP addresses") {
  auto with = [](const std::string& sentinels) {
    return load(std::string("services:\n  - name: a\n    listen: 127.0.0.1:6379\n"
                            "    master_name: m\n    sentinels: ") +
                sentinels + "\n");
  };
  {
    auto result = with("[\"[::1]:26379\", localhost:26379, 127.0.0.1:26379]");
    INFO(dump(result));
    REQUIRE(result.config);
    CHECK(result.config->services[0].sentinels.size() == 3);
  }
  struct Case {
    const char* value;
    const char* path;
    const char* words;
  };
  const Case cases[] = {
      {"127.0.0.1:26379", "services[0].sentinels",
       "expected a list of Sentinel addresses such as [127.0.0.1:26379, 127.0.0.1:26380], got "
       "'127.0.0.1:26379'"},
      {"{a: 1}", "services[0].sentinels", "expected a list of Sentinel addresses"},
      {"[]", "services[0].sentinels", "must list at least one Sentinel address"},
      {"~", "services[0].sentinels", "must list at least one Sentinel address"},
      {"[127.0.0.1]", "services[0].sentinels[0]",
       "invalid address '127.0.0.1': expected host:port or [ipv6]:port"},
      {"[127.0.0.1:0]", "services[0].sentinels[0]",
       "invalid address '127.0.0.1:0': port must be a number from 1 to 65535; use host:port or "
       "[ipv6]:port"},
      {"[\"::1:26379\"]", "services[0].sentinels[0]", "IPv6 addresses need brackets"},
      {"[unix:/run/sentinel.sock]", "services[0].sentinels[0]",
       "must be a TCP host:port (Sentinels name each other and the master by IP and port), got "
       "'unix:/run/sentinel.sock'"},
      {"[127.0.0.1:26379, [a, b]]", "services[0].sentinels[1]",
       "expected a Sentinel address such as 127.0.0.1:26379, got a list"},
      {"[127.0.0.1:26379, 127.0.0.1:26379]", "services[0].sentinels[1]",
       "duplicate Sentinel address 127.0.0.1:26379; already listed as services[0].sentinels[0] "
       "(line 5)"},
      {"[127.0.0.1:26379, 127.0.0.1:6379]", "services[0].sentinels[1]",
       "is the same address as listen; the proxy would ask itself for the master"},
  };
  for (const Case& c : cases) {
    auto result = with(c.value);
    INFO(c.value);
    REQUIRE(result.errors.size() == 1);
    require_error(result, c.path, 5, c.words);
  }
  // An empty block item has no line of its own (yaml-cpp would give the next key's): it is
  // reported on the `sentinels` line.
  auto empty_item = with("\n      - 127.0.0.1:26379\n      -\n    hold:\n      timeout: 1s");
  REQUIRE(empty_item.errors.size() == 1);
  require_error(empty_item, "services[0].sentinels[1]", 5,
                "empty list item; expected a Sentinel address such as 127.0.0.1:26379");
}

TEST_CASE("failover values") {
  auto with = [](const char* key, const char* value) {
    return load(std::string(kMinimalSentinel) + "    failover:\n      " + key + ": " + value +
                "\n");
  };
  CHECK(with("poll_interval", "10ms").config->services[0].failover.poll_interval.count() == 10);
  CHECK(with("hold_bound", "24h").config->services[0].failover.hold_bound.count() ==
        24 * 3600 * 1000);
  struct Case {
    const char* key;
    const char* value;
    const char* words;
  };
  const Case cases[] = {
      {"poll_interval", "9ms", "must be at least 10ms, got 9ms"},
      {"poll_interval", "0", "must be at least 10ms"},
      {"poll_interval", "1", "expected a duration with a unit"},
      {"poll_interval", "25h", "must be at most 24h"},
      {"hold_bound", "0", "must be greater than zero, got 0"},
      {"hold_bound", "-1s", "must not be negative"},
      {"hold_bound", "[1s]", "expected a duration such as 250ms, 5s or 2m, got a list"},
      {"poll_intervall", "1s", "unknown key (did you mean 'poll_interval'?)"},
  };
  for (const Case& c : cases) {
    auto result = with(c.key, c.value);
    INFO(c.key << ": " << c.value);
    REQUIRE(result.errors.size() == 1);
    require_error(result, std::string("services[0].failover.") + c.key, 7, c.words);
  }
  auto not_a_mapping = load(std::string(kMinimalSentinel) + "    failover: 1s\n");
  REQUIRE(not_a_mapping.errors.size() == 1);
  require_error(not_a_mapping, "services[0].failover", 6,
                "expected a mapping of key: value lines, got '1s'");
}

TEST_CASE("pool.mode is shared or session") {
  auto ok = load(std::string(kMinimal) + "    pool:\n      mode: session\n");
  INFO(dump(ok));
  REQUIRE(ok.config);
  CHECK(ok.config->services[0].pool.mode == PoolMode::session);
  CHECK(load(std::string(kMinimal)).config->services[0].pool.mode == PoolMode::shared);
  auto bad = load(std::string(kMinimal) + "    pool:\n      mode: transaction\n");
  CHECK_FALSE(bad.config);
  require_error(bad, "services[0].pool.mode", 6,
                "expected one of: shared, session, got 'transaction'");
}
