// AUTH and HELLO decisions (client_auth.hpp): Redis 7.0's replies, byte for byte, checked
// against `redis-server --requirepass` (and without it) when written.
#include "tether/proxy/client_auth.hpp"

#include <catch2/catch.hpp>

using tether::proxy::check_auth;
using tether::proxy::constant_time_equal;
using tether::proxy::evaluate_hello;
using Args = std::vector<std::string_view>;

namespace {

const std::string kWrongPass = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
const std::string kHelloNoauth =
    "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
    "AUTH <user> <pass> option can be used to authenticate the client and select the RESP "
    "protocol version at the same time\r\n";

}  // namespace

TEST_CASE("constant_time_equal") {
  CHECK(constant_time_equal("secret", "secret"));
  CHECK_FALSE(constant_time_equal("secreT", "secret"));
  CHECK_FALSE(constant_time_equal("secret", "secret2"));       // a prefix
  CHECK_FALSE(constant_time_equal("secret2", "secret"));       // longer
  CHECK_FALSE(constant_time_equal("secretsecret", "secret"));  // the secret cycled
  CHECK_FALSE(constant_time_equal("", "secret"));
  CHECK(constant_time_equal("", ""));
  CHECK_FALSE(constant_time_equal("x", ""));
  CHECK(constant_time_equal(std::string("a\0b", 3), std::string("a\0b", 3)));
  CHECK_FALSE(constant_time_equal(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST_CASE("AUTH with a client password (requirepass)") {
  const std::string pw = "s3cret";
  auto ok = check_auth(Args{"s3cret"}, pw);
  CHECK(ok.reply == "+OK\r\n");
  CHECK(ok.authenticated);
  CHECK(check_auth(Args{"default", "s3cret"}, pw).authenticated);
  for (const Args& bad : {Args{"wrong"}, Args{"default", "wrong"}, Args{"DEFAULT", "s3cret"},
                          Args{"bob", "s3cret"}, Args{"s3cret "}, Args{""}}) {
    auto out = check_auth(bad, pw);
    CHECK(out.reply == kWrongPass);
    CHECK(out.wrong_password);
    CHECK_FALSE(out.authenticated);
  }
  CHECK(check_auth(Args{}, pw).reply == "-ERR wrong number of arguments for 'auth' command\r\n");
  CHECK(check_auth(Args{"a", "b", "c"}, pw).reply == "-ERR syntax error\r\n");
}

TEST_CASE("AUTH without a client password: as Redis without requirepass") {
  CHECK(check_auth(Args{"x"}, "").reply ==
        "-ERR AUTH <password> called without any password configured for the default user. "
        "Are you sure your configuration is correct?\r\n");
  auto any = check_auth(Args{"default", "anything"}, "");
  CHECK(any.reply == "+OK\r\n");
  CHECK(any.authenticated);
  auto other = check_auth(Args{"bob", "x"}, "");
  CHECK(other.reply == kWrongPass);
  CHECK(other.wrong_password);
}

TEST_CASE("HELLO: protocol version") {
  CHECK(evaluate_hello(Args{}, "", true).error.empty());
  CHECK(evaluate_hello(Args{}, "", true).version == 0);
  CHECK(evaluate_hello(Args{"2"}, "", true).version == 2);
  CHECK(evaluate_hello(Args{"3"}, "", true).version == 3);
  for (std::string_view v : {"4", "1", "0", "-1", "99999999999999999", "-9223372036854775808"}) {
    INFO(v);
    CHECK(evaluate_hello(Args{v}, "", true).error == "-NOPROTO unsupported protocol version\r\n");
  }
  for (std::string_view v : {"x", "", " 2", "2 ", "+2", "02", "-0", "3.0", "99999999999999999999",
                             "9223372036854775808", "AUTH"}) {
    INFO(v);
    CHECK(evaluate_hello(Args{v}, "", true).error ==
          "-ERR Protocol version is not an integer or out of range\r\n");
  }
  // The version is checked before anything else, even before authentication.
  CHECK(evaluate_hello(Args{"4", "FOO"}, "pw", false).error.starts_with("-NOPROTO "));
}

TEST_CASE("HELLO: options left to right, the first bad one ends it") {
  const std::string pw = "pw";
  SECTION("AUTH authenticates and SETNAME names") {
    auto out = evaluate_hello(Args{"3", "auth", "default", "pw", "setname", "app"}, pw, false);
    CHECK(out.error.empty());
    CHECK(out.authenticated);
    CHECK(out.version == 3);
    REQUIRE(out.name);
    CHECK(*out.name == "app");
  }
  SECTION("not authenticated, no AUTH option") {
    auto out = evaluate_hello(Args{"2"}, pw, false);
    CHECK(out.error == kHelloNoauth);
    CHECK(out.noauth);
    CHECK(evaluate_hello(Args{}, pw, false).error == kHelloNoauth);
  }
  SECTION("a wrong password") {
    auto out = evaluate_hello(Args{"2", "AUTH", "default", "bad", "SETNAME", "a b"}, pw, false);
    CHECK(out.error == kWrongPass);
    CHECK(out.wrong_password);
    CHECK_FALSE(out.authenticated);
  }
  SECTION("a bad name before AUTH wins; after a good AUTH it still authenticates") {
    const std::string bad_name =
        "-ERR Client names cannot contain spaces, newlines or special characters.\r\n";
    CHECK(evaluate_hello(Args{"2", "SETNAME", "a b", "AUTH", "default", "bad"}, pw, false).error ==
          bad_name);
    auto out = evaluate_hello(Args{"3", "AUTH", "default", "pw", "SETNAME", "a b"}, pw, false);
    CHECK(out.error == bad_name);
    CHECK(out.authenticated);
    CHECK_FALSE(out.name);
  }
  SECTION("syntax errors name the option as sent") {
    CHECK(evaluate_hello(Args{"2", "AUTH", "default"}, pw, true).error ==
          "-ERR Syntax error in HELLO option 'AUTH'\r\n");
    CHECK(evaluate_hello(Args{"2", "SETNAME"}, pw, true).error ==
          "-ERR Syntax error in HELLO option 'SETNAME'\r\n");
    CHECK(evaluate_hello(Args{"2", "foo"}, pw, true).error ==
          "-ERR Syntax error in HELLO option 'foo'\r\n");
    CHECK(evaluate_hello(Args{"2", "a\r\nb"}, pw, true).error ==
          "-ERR Syntax error in HELLO option 'a  b'\r\n");
    // A good AUTH before the bad option still counts.
    auto out = evaluate_hello(Args{"2", "AUTH", "default", "pw", "FOO"}, pw, false);
    CHECK(out.authenticated);
    CHECK_FALSE(out.error.empty());
  }
  SECTION("the last SETNAME wins; an empty one clears the name") {
    auto out = evaluate_hello(Args{"2", "SETNAME", "a", "SETNAME", "b"}, "", true);
    REQUIRE(out.name);
    CHECK(*out.name == "b");
    auto cleared = evaluate_hello(Args{"2", "SETNAME", ""}, "", true);
    REQUIRE(cleared.name);
    CHECK(cleared.name->empty());
  }
  SECTION("without a client password, HELLO AUTH takes any password for default") {
    CHECK(evaluate_hello(Args{"2", "AUTH", "default", "x"}, "", true).error.empty());
    CHECK(evaluate_hello(Args{"2", "AUTH", "bob", "x"}, "", true).error == kWrongPass);
  }
}
