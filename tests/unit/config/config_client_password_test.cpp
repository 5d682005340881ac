// services[].client_password and client_password_file: what clients must AUTH with.
#include <cstdlib>

#include "config_test_support.hpp"

using namespace tether::config::test;

namespace {

constexpr const char* kSecret = "cl1ent-s3cret";

// Lines start at 5: kMinimal has 4.
std::string with(std::string_view lines) {
  return std::string(kMinimal) + std::string(lines);
}

}  // namespace

TEST_CASE("client_password: none by default, inline, from a file, from the environment") {
  SECTION("absent: no password") {
    auto result = load(std::string(kMinimal));
    REQUIRE(result.config);
    CHECK(result.config->services[0].client_password.empty());
  }
  SECTION("inline") {
    auto result = load(with("    client_password: " + std::string(kSecret) + "\n"));
    INFO(dump(result));
    REQUIRE(result.config);
    CHECK(result.config->services[0].client_password == kSecret);
    CHECK(result.config->services[0].upstream_password.empty());  // a separate secret
  }
  SECTION("a file's first line, relative paths from the config's directory") {
    TempDir dir;
    dir.write("clients.pw", std::string(kSecret) + "\r\nsecond line\n");
    std::string yaml_text = with("    client_password_file: clients.pw\n");
    const auto path = dir.write("t.yaml", yaml_text);
    auto result = tether::config::load_config_file(path);
    INFO(dump(result));
    REQUIRE(result.config);
    CHECK(result.config->services[0].client_password == kSecret);
  }
  SECTION("${NAME} and $CREDENTIALS_DIRECTORY") {
    TempDir dir;
    dir.write("clients", "from-credentials\n");
    ::setenv("CREDENTIALS_DIRECTORY", dir.path().c_str(), 1);
    ::setenv("TETHER_TEST_CLIENT_PW", kSecret, 1);
    auto file = load(with("    client_password_file: ${CREDENTIALS_DIRECTORY}/clients\n"));
    auto env = load(with("    client_password: ${TETHER_TEST_CLIENT_PW}\n"));
    ::unsetenv("CREDENTIALS_DIRECTORY");
    ::unsetenv("TETHER_TEST_CLIENT_PW");
    INFO(dump(file) << dump(env));
    REQUIRE(file.config);
    REQUIRE(env.config);
    CHECK(file.config->services[0].client_password == "from-credentials");
    CHECK(env.config->services[0].client_password == kSecret);
  }
}

TEST_CASE("client_password: errors name the key, never the secret") {
  SECTION("both keys") {
    auto result =
        load(with("    client_password: x\n    client_password_file: /etc/redis-tether/pw\n"));
    require_error(result, "services[0].client_password_file", 6,
                  "cannot be combined with client_password (line 5)");
  }
  SECTION("an empty inline value would turn authentication off") {
    auto result = load(with("    client_password: \"\"\n"));
    require_error(result, "services[0].client_password", 5, "must not be empty");
  }
  SECTION("an unset variable") {
    ::unsetenv("TETHER_TEST_UNSET_PW");
    auto result = load(with("    client_password: ${TETHER_TEST_UNSET_PW}\n"));
    require_error(result, "services[0].client_password", 5,
                  "environment variable TETHER_TEST_UNSET_PW is not set");
  }
  SECTION("a missing or empty file") {
    TempDir dir;
    const auto empty = dir.write("empty", "\nsecond\n");
    auto missing = load(with("    client_password_file: " + dir.path().string() + "/nope\n"));
    require_error(missing, "services[0].client_password_file", 5, "cannot read password file");
    auto blank = load(with("    client_password_file: " + empty + "\n"));
    require_error(blank, "services[0].client_password_file", 5, "is empty");
  }
  SECTION("not a string") {
    auto result = load(with("    client_password: [a, b]\n"));
    REQUIRE(error_at(result, "services[0].client_password") != nullptr);
  }
  SECTION("no client_username: the only user is default") {
    auto result = load(with("    client_username: app\n"));
    REQUIRE(error_at(result, "services[0].client_username") != nullptr);
  }
  SECTION("the secret is in no message") {
    auto result = load(with("    client_password: " + std::string(kSecret) +
                            "\n    client_password_file: /nonexistent\n"));
    REQUIRE_FALSE(result.errors.empty());
    CHECK(dump(result).find(kSecret) == std::string::npos);
  }
}
