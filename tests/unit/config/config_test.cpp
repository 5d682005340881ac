// Loader: defaults, every key, the annotated example, file handling and format_error.
#include "tether/config/config.hpp"

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "config_test_support.hpp"

using namespace std::chrono_literals;
using namespace tether::config;
using namespace tether::config::test;
using tether::util::Endpoint;

TEST_CASE("a minimal file gets every default") {
  auto result = load(std::string(kMinimal));
  INFO(dump(result));
  REQUIRE(result.errors.empty());
  REQUIRE(result.config);
  const Config& c = *result.config;
  CHECK(c.log_level == "info");
  CHECK(c.workers == 1);
  CHECK(c.drain_timeout == 5s);
  CHECK_FALSE(c.admin.listen);
  REQUIRE(c.services.size() == 1);
  const ServiceConfig& s = c.services[0];
  CHECK(s.name == "main");
  CHECK(s.listen == Endpoint{Endpoint::Kind::tcp, "127.0.0.1", 6379, ""});
  CHECK(s.upstream == Endpoint{Endpoint::Kind::tcp, "127.0.0.1", 6380, ""});
  CHECK(s.listen_mode == 0660);
  CHECK(s.upstream_username.empty());
  CHECK(s.upstream_password.empty());
  CHECK_FALSE(s.uses_sentinel());
  CHECK(s.master_name.empty());
  CHECK(s.sentinels.empty());
  CHECK(s.sentinel_username.empty());
  CHECK(s.sentinel_password.empty());
  CHECK(s.failover.poll_interval == 1s);
  CHECK(s.failover.hold_bound == 10s);
  CHECK(s.pool.size == 2);
  CHECK(s.pool.connect_timeout == 1s);
  CHECK(s.pool.reconnect_min == 50ms);
  CHECK(s.pool.reconnect_max == 1s);
  CHECK(s.pool.max_dedicated == 64);
  CHECK(s.pool.dedicated_warm == 2);
  CHECK(s.pool.databases == 16);
  CHECK(s.deny_commands ==
        std::vector<std::string>{"SHUTDOWN", "REPLICAOF", "SLAVEOF", "FAILOVER"});
  CHECK(s.hold.timeout == 5s);
  CHECK(s.hold.max_bytes == 16ULL << 20);
  CHECK(s.limits.max_clients == 10000);
  CHECK(s.limits.max_pending == 1024);
  CHECK(s.limits.output_soft_limit == 1ULL << 20);
  CHECK(s.limits.output_hard_limit == 1ULL << 30);
  CHECK(s.limits.max_request_bytes == 1ULL << 30);
  CHECK(s.protocol.max_bulk_len == 512LL << 20);
  CHECK(s.protocol.max_inline_len == 64 * 1024);
  CHECK(s.protocol.max_multibulk_len == 2147483647);
  CHECK(s.protocol.max_reply_bulk_len == 512LL << 20);
}

TEST_CASE("every key is read") {
  auto result = load(yaml(R"(
log_level: debug
workers: 4
drain_timeout: 0
admin:
  listen: "[::1]:9121"
services:
  - name: main
    listen: unix:/run/redis-tether/main.sock
    listen_mode: "0600"
    upstream: redis.internal:6380
    upstream_username: app
    upstream_password: s3cret
    deny_commands: [flushall, Keys, FLUSHALL]
    pool:
      size: 8
      connect_timeout: 250ms
      reconnect_min: 10ms
      reconnect_max: 2m
      max_dedicated: 3
      dedicated_warm: 1
      databases: 32
    hold:
      timeout: 0
      max_bytes: 1MB
    limits:
      max_clients: 50
      max_pending: 16
      output_soft_limit: 64KiB
      output_hard_limit: 2MiB
      max_request_bytes: 4MiB
      max_bulk_len: 1GiB
      max_inline_len: 1024
      max_multibulk_len: 1000
  - name: cache-2.eu
    listen: 127.0.0.1:7001
    upstream: unix:/run/redis/redis.sock
)"));
  INFO(dump(result));
  REQUIRE(result.config);
  const Config& c = *result.config;
  CHECK(c.log_level == "debug");
  CHECK(c.workers == 4);
  CHECK(c.drain_timeout == 0ms);
  REQUIRE(c.admin.listen);
  CHECK(*c.admin.listen == Endpoint{Endpoint::Kind::tcp, "::1", 9121, ""});
  REQUIRE(c.services.size() == 2);
  const ServiceConfig& s = c.services[0];
  CHECK(s.listen == Endpoint{Endpoint::Kind::unix_socket, "", 0, "/run/redis-tether/main.sock"});
  CHECK(s.listen_mode == 0600);
  CHECK(s.upstream == Endpoint{Endpoint::Kind::tcp, "redis.internal", 6380, ""});
  CHECK(s.upstream_username == "app");
  CHECK(s.upstream_password == "s3cret");
  CHECK(s.pool.size == 8);
  CHECK(s.pool.connect_timeout == 250ms);
  CHECK(s.pool.reconnect_min == 10ms);
  CHECK(s.pool.reconnect_max == 2min);
  CHECK(s.pool.max_dedicated == 3);
  CHECK(s.pool.dedicated_warm == 1);
  CHECK(s.pool.databases == 32);
  CHECK(s.deny_commands == std::vector<std::string>{"FLUSHALL", "KEYS"});
  CHECK(s.hold.timeout == 0ms);
  CHECK(s.hold.max_bytes == 1ULL << 20);
  CHECK(s.limits.max_clients == 50);
  CHECK(s.limits.max_pending == 16);
  CHECK(s.limits.output_soft_limit == 64 * 1024);
  CHECK(s.limits.output_hard_limit == 2ULL << 20);
  CHECK(s.limits.max_request_bytes == 4ULL << 20);
  CHECK(s.protocol.max_bulk_len == 1LL << 30);
  CHECK(s.protocol.max_reply_bulk_len == 1LL << 30);  // above 512MiB: follows max_bulk_len
  CHECK(s.protocol.max_inline_len == 1024);
  CHECK(s.protocol.max_multibulk_len == 1000);
  const ServiceConfig& t = c.services[1];
  CHECK(t.name == "cache-2.eu");
  CHECK(t.upstream == Endpoint{Endpoint::Kind::unix_socket, "", 0, "/run/redis/redis.sock"});
  CHECK(t.pool.size == 2);  // sections left out keep their defaults
}

TEST_CASE("a Sentinel-mode service gets its defaults") {
  auto result = load(std::string(kMinimalSentinel));
  INFO(dump(result));
  REQUIRE(result.config);
  const ServiceConfig& s = result.config->services[0];
  CHECK(s.uses_sentinel());
  CHECK(s.master_name == "mymaster");
  REQUIRE(s.sentinels.size() == 2);
  CHECK(s.sentinels[0] == Endpoint{Endpoint::Kind::tcp, "127.0.0.1", 26379, ""});
  CHECK(s.sentinels[1] == Endpoint{Endpoint::Kind::tcp, "127.0.0.1", 26380, ""});
  CHECK(s.upstream == Endpoint{});  // Sentinel mode: the Sentinels name the master
  CHECK(s.sentinel_username.empty());
  CHECK(s.sentinel_password.empty());
  CHECK(s.failover.poll_interval == 1s);
  CHECK(s.failover.hold_bound == 10s);
  CHECK(s.pool.size == 2);
}

TEST_CASE("every Sentinel-mode key is read") {
  auto result = load(yaml(R"(
services:
  - name: main
    listen: 127.0.0.1:6379
    master_name: "redis-main.eu"
    sentinels:
      - 10.0.0.1:26379
      - sentinel-b.internal:26379
      - "[fd00::3]:26379"
    sentinel_username: watcher
    sentinel_password: s3ntinel
    upstream_username: app
    upstream_password: s3cret
    failover:
      poll_interval: 10ms
      hold_bound: 1ms
    hold:
      timeout: 2s
  - name: other
    listen: 127.0.0.1:6479
    upstream: 127.0.0.1:6380
)"));
  INFO(dump(result));
  REQUIRE(result.config);
  REQUIRE(result.config->services.size() == 2);
  const ServiceConfig& s = result.config->services[0];
  CHECK(s.uses_sentinel());
  CHECK(s.master_name == "redis-main.eu");
  REQUIRE(s.sentinels.size() == 3);
  CHECK(s.sentinels[0] == Endpoint{Endpoint::Kind::tcp, "10.0.0.1", 26379, ""});
  CHECK(s.sentinels[1] == Endpoint{Endpoint::Kind::tcp, "sentinel-b.internal", 26379, ""});
  CHECK(s.sentinels[2] == Endpoint{Endpoint::Kind::tcp, "fd00::3", 26379, ""});
  CHECK(s.sentinel_username == "watcher");
  CHECK(s.sentinel_password == "s3ntinel");
  // The upstream credentials still apply: they log in to whichever node is the master.
  CHECK(s.upstream_username == "app");
  CHECK(s.upstream_password == "s3cret");
  CHECK(s.upstream == Endpoint{});
  CHECK(s.failover.poll_interval == 10ms);
  CHECK(s.failover.hold_bound == 1ms);
  CHECK(s.hold.timeout == 2s);
  const ServiceConfig& t = result.config->services[1];  // modes are per service
  CHECK_FALSE(t.uses_sentinel());
  CHECK(t.sentinels.empty());
  CHECK(t.upstream.to_string() == "127.0.0.1:6380");
}

TEST_CASE("a small max_bulk_len keeps replies at Redis's 512MiB") {
  auto result = load(std::string(kMinimal) + "    limits:\n      max_bulk_len: 1KiB\n");
  INFO(dump(result));
  REQUIRE(result.config);
  CHECK(result.config->services[0].protocol.max_bulk_len == 1024);
  CHECK(result.config->services[0].protocol.max_reply_bulk_len == 512LL << 20);
}

TEST_CASE("limits at their boundaries are accepted") {
  auto result = load(std::string(kMinimal) + yaml(R"(
    pool:
      size: 1024
      reconnect_min: 1s
      reconnect_max: 1s
      connect_timeout: 24h
    limits:
      max_bulk_len: 9223372036854775807
      max_multibulk_len: 2147483647
      max_inline_len: 1
      output_soft_limit: 5MiB
      output_hard_limit: 5MiB
workers: 64
)"));
  INFO(dump(result));
  REQUIRE(result.config);
  CHECK(result.config->workers == 64);
  CHECK(result.config->services[0].protocol.max_bulk_len == INT64_MAX);
}

TEST_CASE("empty sections mean all defaults") {
  auto result = load(std::string(kMinimal) + "    pool:\n    hold:\n    limits:\nadmin:\n");
  INFO(dump(result));
  REQUIRE(result.config);
  CHECK(result.config->services[0].pool.size == 2);
  CHECK_FALSE(result.config->admin.listen);
}

TEST_CASE("the annotated example is valid and shows every default") {
  auto result = load_config_file(TETHER_EXAMPLE_CONFIG);
  INFO(dump(result));
  REQUIRE(result.errors.empty());
  REQUIRE(result.config);
  const Config& c = *result.config;
  const Config defaults;
  CHECK(c.log_level == defaults.log_level);
  CHECK(c.workers == defaults.workers);
  CHECK(c.drain_timeout == defaults.drain_timeout);
  REQUIRE(c.services.size() == 1);
  const ServiceConfig& s = c.services[0];
  const ServiceConfig d;
  CHECK(s.listen.to_string() == "127.0.0.1:6379");
  CHECK(s.upstream.to_string() == "127.0.0.1:6380");
  CHECK(s.listen_mode == d.listen_mode);
  CHECK(s.pool.size == d.pool.size);
  CHECK(s.pool.connect_timeout == d.pool.connect_timeout);
  CHECK(s.pool.reconnect_min == d.pool.reconnect_min);
  CHECK(s.pool.reconnect_max == d.pool.reconnect_max);
  CHECK(s.pool.max_dedicated == d.pool.max_dedicated);
  CHECK(s.pool.dedicated_warm == d.pool.dedicated_warm);
  CHECK(s.pool.databases == d.pool.databases);
  CHECK(s.hold.timeout == d.hold.timeout);
  CHECK(s.hold.max_bytes == d.hold.max_bytes);
  CHECK(s.limits.max_clients == d.limits.max_clients);
  CHECK(s.limits.max_pending == d.limits.max_pending);
  CHECK(s.limits.output_soft_limit == d.limits.output_soft_limit);
  CHECK(s.limits.output_hard_limit == d.limits.output_hard_limit);
  CHECK(s.limits.max_request_bytes == d.limits.max_request_bytes);
  CHECK(s.protocol.max_bulk_len == d.protocol.max_bulk_len);
  CHECK(s.protocol.max_inline_len == d.protocol.max_inline_len);
  CHECK(s.protocol.max_multibulk_len == d.protocol.max_multibulk_len);
  CHECK_FALSE(s.uses_sentinel());  // the active default is a static upstream

  // Every key appears, commented out or not.
  std::ifstream in(TETHER_EXAMPLE_CONFIG);
  std::stringstream text;
  text << in.rdbuf();
  for (const char* key : {"log_level:",
                          "workers:",
                          "drain_timeout:",
                          "admin:",
                          "listen:",
                          "services:",
                          "name:",
                          "listen_mode:",
                          "upstream:",
                          "upstream_username:",
                          "upstream_password:",
                          "upstream_password_file:",
                          "client_password:",
                          "client_password_file:",
                          "master_name:",
                          "sentinels:",
                          "sentinel_username:",
                          "sentinel_password:",
                          "sentinel_password_file:",
                          "failover:",
                          "poll_interval:",
                          "hold_bound:",
                          "pool:",
                          "size:",
                          "connect_timeout:",
                          "reconnect_min:",
                          "reconnect_max:",
                          "max_dedicated:",
                          "dedicated_warm:",
                          "databases:",
                          "deny_commands:",
                          "hold:",
                          "timeout:",
                          "max_bytes:",
                          "limits:",
                          "max_clients:",
                          "max_pending:",
                          "output_soft_limit:",
                          "output_hard_limit:",
                          "max_request_bytes:",
                          "max_bulk_len:",
                          "max_inline_len:",
                          "max_multibulk_len:"}) {
    INFO(key);
    CHECK(text.str().find(key) != std::string::npos);
  }
}

TEST_CASE("the example with its optional keys uncommented is valid too") {
  std::ifstream in(TETHER_EXAMPLE_CONFIG);
  std::string text, line;
  while (std::getline(in, line)) {
    // "# admin:" -> "admin:", "    # upstream_username: app" -> "    upstream_username: app";
    // the password file line stays out (it names a file that does not exist here).
    for (const char* key : {"admin:", "  listen: 127.0.0.1:9121",
                            "upstream_username:", "upstream_password: ", "client_password: "}) {
      auto at = line.find(std::string("# ") + key);
      if (at != std::string::npos && line.find_first_not_of(' ') == at) line.erase(at, 2);
    }
    text += line + "\n";
  }
  auto result = load(text);
  INFO(dump(result));
  REQUIRE(result.config);
  REQUIRE(result.config->admin.listen);
  CHECK(result.config->admin.listen->to_string() == "127.0.0.1:9121");
  CHECK(result.config->services[0].upstream_username == "app");
  CHECK_FALSE(result.config->services[0].upstream_password.empty());
  CHECK(result.config->services[0].client_password == "change-me");
}

TEST_CASE("the example's Sentinel alternative, uncommented instead of upstream, is valid") {
  std::ifstream in(TETHER_EXAMPLE_CONFIG);
  std::string text, line;
  while (std::getline(in, line)) {
    // "    upstream: ..." -> commented out; "    # master_name: mymaster" -> "    master_name:
    // mymaster", "    #   hold_bound: 10s" -> "      hold_bound: 10s". The password file
    // line stays out (it names a file that does not exist here).
    if (line.starts_with("    upstream: ")) line.insert(4, "# ");
    for (const char* key :
         {"master_name:", "sentinels:", "sentinel_username:", "sentinel_password: ", "failover:",
          "  poll_interval:", "  hold_bound:"}) {
      auto at = line.find(std::string("# ") + key);
      if (at != std::string::npos && line.find_first_not_of(' ') == at) line.erase(at, 2);
    }
    text += line + "\n";
  }
  auto result = load(text);
  INFO(text << dump(result));
  REQUIRE(result.config);
  const ServiceConfig& s = result.config->services[0];
  const FailoverOptions d;
  CHECK(s.uses_sentinel());
  CHECK(s.master_name == "mymaster");
  CHECK(s.sentinels.size() == 3);
  CHECK(s.upstream == Endpoint{});
  CHECK(s.sentinel_username == "tether");
  CHECK_FALSE(s.sentinel_password.empty());
  CHECK(s.failover.poll_interval == d.poll_interval);
  CHECK(s.failover.hold_bound == d.hold_bound);
}

TEST_CASE("format_error") {
  CHECK(format_error("/etc/t.yaml", ConfigError{"services[0].pool.size", 12, "bad"}) ==
        "/etc/t.yaml:12: services[0].pool.size: bad");
  CHECK(format_error("t.yaml", ConfigError{"workers", 0, "bad"}) == "t.yaml: workers: bad");
  CHECK(format_error("t.yaml", ConfigError{"", 3, "YAML syntax error: x"}) ==
        "t.yaml:3: YAML syntax error: x");
}

TEST_CASE("load_config_file reads the file and reports one it cannot read") {
  TempDir dir;
  auto good = load_config_file(dir.write("ok.yaml", kMinimal));
  INFO(dump(good));
  CHECK(good.config);

  auto missing = load_config_file((dir.path() / "absent.yaml").string());
  REQUIRE(missing.errors.size() == 1);
  CHECK(missing.errors[0].line == 0);
  CHECK(missing.errors[0].message == "cannot read config file: No such file or directory");
  CHECK_FALSE(missing.config);

  auto directory = load_config_file(dir.path().string());
  REQUIRE(directory.errors.size() == 1);
  CHECK(directory.errors[0].message.find("directory") != std::string::npos);
}

TEST_CASE("a YAML syntax error is one error with its line") {
  auto result = load(yaml(R"(
workers: 1
services:
  - name: main
    listen: [127.0.0.1:6379
    upstream: 127.0.0.1:6380
)"));
  REQUIRE(result.errors.size() == 1);
  CHECK_FALSE(result.config);
  CHECK(result.errors[0].path.empty());
  CHECK(result.errors[0].line == 5);
  CHECK(result.errors[0].message.starts_with("YAML syntax error: "));

  auto tab = load("services:\n  - name: a\n\tlisten: x\n");
  REQUIRE(tab.errors.size() == 1);
  CHECK(tab.errors[0].line == 3);
}

TEST_CASE("an empty file, a non-mapping root and two documents are errors") {
  auto empty = load("# nothing but a comment\n");
  REQUIRE(empty.errors.size() == 1);
  CHECK(empty.errors[0].path == "services");
  CHECK(empty.errors[0].message.find("required key is missing") != std::string::npos);

  auto list = load("- a\n- b\n");
  REQUIRE(list.errors.size() == 1);
  CHECK(list.errors[0].path.empty());
  CHECK(list.errors[0].line == 1);
  CHECK(list.errors[0].message == "expected a mapping of key: value lines, got a list");

  auto two = load(std::string(kMinimal) + "---\nworkers: 2\n");
  REQUIRE(two.errors.size() == 1);
  CHECK(two.errors[0].line == 6);
  CHECK(two.errors[0].message.find("second YAML document") != std::string::npos);
}
