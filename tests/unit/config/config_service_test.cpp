// Services: upstream and Sentinel authentication (inline password, password file) and checks
// that span services.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "config_test_support.hpp"
#include "tether/config/config.hpp"

using namespace tether::config;
using namespace tether::config::test;

namespace {

constexpr std::string_view kSecret = "pa55:word with spaces ";

std::string with_auth(std::string_view lines) {
  return std::string(kMinimal) + std::string(lines);
}

// Lines start at 6: kMinimalSentinel has 5.
std::string with_sentinel_auth(std::string_view lines) {
  return std::string(kMinimalSentinel) + std::string(lines);
}

// No error message may ever contain the password.
void check_no_secret(const LoadResult& result) {
  for (const auto& e : result.errors) {
    INFO(e.message);
    CHECK(e.message.find("pa55") == std::string::npos);
  }
}

}  // namespace

TEST_CASE("an inline password and an ACL user") {
  auto result = load(with_auth("    upstream_username: app\n    upstream_password: \"" +
                               std::string(kSecret) + "\"\n"));
  INFO(dump(result));
  REQUIRE(result.config);
  CHECK(result.config->services[0].upstream_username == "app");
  CHECK(result.config->services[0].upstream_password == kSecret);
}

TEST_CASE("the password file's first line is the password") {
  TempDir dir;
  SECTION("trailing CRLF stripped, later lines ignored, spaces kept") {
    std::string file = dir.write("pw", std::string(kSecret) + "\r\nsecond line\n");
    auto result = load(with_auth("    upstream_password_file: " + file + "\n"));
    INFO(dump(result));
    REQUIRE(result.config);
    CHECK(result.config->services[0].upstream_password == kSecret);
  }
  SECTION("no newline at all") {
    std::string file = dir.write("pw", "abc");
    auto result = load(with_auth("    upstream_password_file: " + file + "\n"));
    REQUIRE(result.config);
    CHECK(result.config->services[0].upstream_password == "abc");
  }
  SECTION("a relative path is relative to the config file") {
    std::filesystem::create_directories(dir.path() / "secrets");
    dir.write("secrets/main.pw", "from-file\n");
    std::string config =
        dir.write("tether.yaml", with_auth("    upstream_username: app\n"
                                           "    upstream_password_file: secrets/main.pw\n"));
    auto result = load_config_file(config);
    INFO(dump(result));
    REQUIRE(result.config);
    CHECK(result.config->services[0].upstream_username == "app");
    CHECK(result.config->services[0].upstream_password == "from-file");
  }
}

TEST_CASE("password file problems name the file, never the secret") {
  TempDir dir;
  SECTION("missing") {
    std::string file = (dir.path() / "absent.pw").string();
    auto result = load(with_auth("    upstream_password_file: " + file + "\n"));
    REQUIRE(result.errors.size() == 1);
    require_error(result, "services[0].upstream_password_file", 5,
                  "cannot read password file '" + file + "': No such file or directory");
  }
  SECTION("a directory") {
    auto result = load(with_auth("    upstream_password_file: " + dir.path().string() + "\n"));
    REQUIRE(result.errors.size() == 1);
    require_error(result, "services[0].upstream_password_file", 5, "it is a directory");
  }
  SECTION("empty first line") {
    std::string file = dir.write("pw", "\npa55\n");
    auto result = load(with_auth("    upstream_password_file: " + file + "\n"));
    REQUIRE(result.errors.size() == 1);
    require_error(result, "services[0].upstream_password_file", 5,
                  "password file '" + file + "' is empty");
    check_no_secret(result);
  }
  SECTION("both an inline password and a file") {
    std::string file = dir.write("pw", "pa55-file\n");
    auto result =
        load(with_auth("    upstream_password: pa55\n    upstream_password_file: " + file + "\n"));
    REQUIRE(result.errors.size() == 1);
    require_error(result, "services[0].upstream_password_file", 6,
                  "cannot be combined with upstream_password (line 5)");
    check_no_secret(result);
  }
  SECTION("a password that is not a string") {
    auto result = load(with_auth("    upstream_password: {pa55: 1}\n"));
    REQUIRE(result.errors.size() == 1);
    require_error(result, "services[0].upstream_password", 5, "expected a string, got a mapping");
    check_no_secret(result);
  }
  SECTION("an empty password") {
    auto result = load(with_auth("    upstream_password: \"\"\n"));
    REQUIRE(result.errors.size() == 1);
    require_error(result, "services[0].upstream_password", 5, "must not be empty");
  }
}

TEST_CASE("an ACL user needs a password") {
  auto result = load(with_auth("    upstream_username: app\n"));
  REQUIRE(result.errors.size() == 1);
  require_error(result, "services[0].upstream_username", 5,
                "needs upstream_password or upstream_password_file");
}

TEST_CASE("services are checked against each other") {
  auto result = load(yaml(R"(
services:
  - name: a
    listen: 127.0.0.1:7000
    upstream: 127.0.0.1:6380
  - name: b
    listen: unix:/tmp/b.sock
    upstream: 127.0.0.1:6380
  - name: a
    listen: unix:/tmp/b.sock
    upstream: 127.0.0.1:6381
  - name: c
    listen: 127.0.0.1:7000
    upstream: 127.0.0.1:6381
)"));
  INFO(dump(result));
  REQUIRE(result.errors.size() == 3);
  require_error(result, "services[2].name", 8,
                "duplicate service name 'a'; already used by "
                "services[0].name (line 2)");
  require_error(result, "services[2].listen", 9,
                "address unix:/tmp/b.sock is already used by services[1].listen (line 6)");
  require_error(result, "services[3].listen", 12,
                "address 127.0.0.1:7000 is already used by services[0].listen (line 3)");
}

TEST_CASE("two services may share an upstream") {
  auto result = load(yaml(R"(
services:
  - name: a
    listen: 127.0.0.1:7000
    upstream: 127.0.0.1:6380
  - name: b
    listen: 127.0.0.1:7001
    upstream: 127.0.0.1:6380
)"));
  INFO(dump(result));
  REQUIRE(result.config);
  CHECK(result.config->services.size() == 2);
}

TEST_CASE("Sentinel credentials are separate from the upstream's") {
  auto result =
      load(with_sentinel_auth("    sentinel_username: watcher\n"
                              "    sentinel_password: \"" +
                              std::string(kSecret) +
                              "\"\n"
                              "    upstream_username: app\n"
                              "    upstream_password: data-pw\n"));
  INFO(dump(result));
  REQUIRE(result.config);
  const ServiceConfig& s = result.config->services[0];
  CHECK(s.sentinel_username == "watcher");
  CHECK(s.sentinel_password == kSecret);
  CHECK(s.upstream_username == "app");
  CHECK(s.upstream_password == "data-pw");
}

TEST_CASE("the Sentinel password file follows the upstream password file's rules") {
  TempDir dir;
  SECTION("first line, CRLF stripped, relative to the config file") {
    std::filesystem::create_directories(dir.path() / "secrets");
    dir.write("secrets/sentinel.pw", std::string(kSecret) + "\r\nsecond line\n");
    dir.write("secrets/main.pw", "data-pw\n");
    std::string config =
        dir.write("tether.yaml", with_sentinel_auth("    sentinel_username: watcher\n"
                                                    "    sentinel_password_file: "
                                                    "secrets/sentinel.pw\n"
                                                    "    upstream_password_file: "
                                                    "secrets/main.pw\n"));
    auto result = load_config_file(config);
    INFO(dump(result));
    REQUIRE(result.config);
    CHECK(result.config->services[0].sentinel_username == "watcher");
    CHECK(result.config->services[0].sentinel_password == kSecret);
    CHECK(result.config->services[0].upstream_password == "data-pw");
  }
  SECTION("missing") {
    std::string file = (dir.path() / "absent.pw").string();
    auto result = load(with_sentinel_auth("    sentinel_password_file: " + file + "\n"));
    REQUIRE(result.errors.size() == 1);
    require_error(result, "services[0].sentinel_password_file", 6,
                  "cannot read password file '" + file + "': No such file or directory");
  }
  SECTION("empty first line") {
    std::string file = dir.write("pw", "\npa55\n");
    auto result = load(with_sentinel_auth("    sentinel_password_file: " + file + "\n"));
    REQUIRE(result.errors.size() == 1);
    require_error(result, "services[0].sentinel_password_file", 6,
                  "password file '" + file + "' is empty");
    check_no_secret(result);
  }
  SECTION("both an inline password and a file") {
    std::string file = dir.write("pw", "pa55-file\n");
    auto result =
        load(with_sentinel_auth("    sentinel_password: pa55\n"
                                "    sentinel_password_file: " +
                                file + "\n"));
    REQUIRE(result.errors.size() == 1);
    require_error(result, "services[0].sentinel_password_file", 7,
                  "cannot be combined with sentinel_password (line 6); set only one of them");
    check_no_secret(result);
  }
  SECTION("a password that is not a string, and an empty one") {
    auto mapping = load(with_sentinel_auth("    sentinel_password: {pa55: 1}\n"));
    REQUIRE(mapping.errors.size() == 1);
    require_error(mapping, "services[0].sentinel_password", 6, "expected a string, got a mapping");
    check_no_secret(mapping);
    auto empty = load(with_sentinel_auth("    sentinel_password: \"\"\n"));
    REQUIRE(empty.errors.size() == 1);
    require_error(empty, "services[0].sentinel_password", 6, "must not be empty");
  }
  SECTION("an ACL user needs a password") {
    auto result =
        load(with_sentinel_auth("    sentinel_username: watcher\n"
                                "    upstream_password: pa55\n"));
    REQUIRE(result.errors.size() == 1);
    require_error(result, "services[0].sentinel_username", 6,
                  "needs sentinel_password or sentinel_password_file (an ACL user logs in with "
                  "AUTH <username> <password>)");
    check_no_secret(result);
  }
}

TEST_CASE("services may share Sentinels, each following its own master") {
  auto result = load(yaml(R"(
services:
  - name: a
    listen: 127.0.0.1:7000
    master_name: cache
    sentinels: [127.0.0.1:26379, 127.0.0.1:26380]
  - name: b
    listen: 127.0.0.1:7001
    master_name: sessions
    sentinels: [127.0.0.1:26379, 127.0.0.1:26380]
)"));
  INFO(dump(result));
  REQUIRE(result.config);
  CHECK(result.config->services[0].sentinels == result.config->services[1].sentinels);
  CHECK(result.config->services[1].master_name == "sessions");
}

TEST_CASE("passwords and password files from the environment: ${NAME}") {
  ::setenv("TETHER_TEST_PW", std::string(kSecret).c_str(), 1);
  ::setenv("TETHER_TEST_EMPTY", "", 1);
  ::unsetenv("TETHER_TEST_UNSET");
  SECTION("the whole password") {
    auto result = load(with_auth("    upstream_password: ${TETHER_TEST_PW}\n"));
    INFO(dump(result));
    REQUIRE(result.config);
    CHECK(result.config->services[0].upstream_password == kSecret);
  }
  SECTION("within a value, and $${ for a literal ${") {
    auto result = load(with_auth("    upstream_password: \"x-${TETHER_TEST_PW}-$${Y}\"\n"));
    INFO(dump(result));
    REQUIRE(result.config);
    CHECK(result.config->services[0].upstream_password == "x-" + std::string(kSecret) + "-${Y}");
  }
  SECTION("a password file under $CREDENTIALS_DIRECTORY (systemd LoadCredential=)") {
    TempDir dir;
    dir.write("upstream", "from-credentials\n");
    ::setenv("CREDENTIALS_DIRECTORY", dir.path().c_str(), 1);
    auto result =
        load(with_auth("    upstream_password_file: ${CREDENTIALS_DIRECTORY}/upstream\n"));
    ::unsetenv("CREDENTIALS_DIRECTORY");
    INFO(dump(result));
    REQUIRE(result.config);
    CHECK(result.config->services[0].upstream_password == "from-credentials");
  }
  SECTION("the Sentinels' password too") {
    auto result = load(with_sentinel_auth("    sentinel_password: ${TETHER_TEST_PW}\n"));
    INFO(dump(result));
    REQUIRE(result.config);
    CHECK(result.config->services[0].sentinel_password == kSecret);
  }
  SECTION("unset, empty or malformed: an error naming the variable, never the secret") {
    auto result = load(with_auth("    upstream_password: ${TETHER_TEST_UNSET}\n"));
    REQUIRE(result.errors.size() == 1);
    require_error(result, "services[0].upstream_password", 5,
                  "environment variable TETHER_TEST_UNSET is not set");
    result = load(with_auth("    upstream_password_file: ${TETHER_TEST_EMPTY}/pw\n"));
    REQUIRE(result.errors.size() == 1);
    require_error(result, "services[0].upstream_password_file", 5,
                  "environment variable TETHER_TEST_EMPTY is empty");
    result = load(with_auth("    upstream_password: \"pa55${oops\"\n"));
    REQUIRE(result.errors.size() == 1);
    require_error(result, "services[0].upstream_password", 5, "must start a ${NAME} reference");
    check_no_secret(result);
  }
  ::unsetenv("TETHER_TEST_PW");
  ::unsetenv("TETHER_TEST_EMPTY");
}

TEST_CASE("deny_commands: a list of names, [] denies none, other shapes are errors") {
  auto empty = load(with_auth("    deny_commands: []\n"));
  INFO(dump(empty));
  REQUIRE(empty.config);
  CHECK(empty.config->services[0].deny_commands.empty());
  auto scalar = load(with_auth("    deny_commands: FLUSHALL\n"));
  REQUIRE(scalar.errors.size() == 1);
  require_error(scalar, "services[0].deny_commands", 5, "expected a list of command names");
  auto bad = load(with_auth("    deny_commands: [GET, \"two words\", {a: 1}]\n"));
  REQUIRE(bad.errors.size() == 2);
  require_error(bad, "services[0].deny_commands[1]", 5, "expected a command name");
}
