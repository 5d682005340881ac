// decode_reply (through hiredis) and encode_command.
#include "tether/resp/value.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tether/resp/request_scanner.hpp"

using namespace std::string_literals;
using tether::resp::decode_reply;
using tether::resp::encode_command;
using tether::resp::Value;

TEST_CASE("decode_reply decodes each RESP2 type", "[value]") {
  auto v = decode_reply("+OK\r\n");
  REQUIRE(v);
  CHECK(v->type == Value::Type::status);
  CHECK(v->str == "OK");

  v = decode_reply("-ERR bad\r\n");
  REQUIRE(v);
  CHECK(v->is_error());
  CHECK(v->str == "ERR bad");

  v = decode_reply(":-7\r\n");
  REQUIRE(v);
  CHECK(v->type == Value::Type::integer);
  CHECK(v->integer == -7);

  v = decode_reply("$5\r\na\0b\r\n\r\n"s);
  REQUIRE(v);
  CHECK(v->type == Value::Type::string);
  CHECK(v->str == std::string("a\0b\r\n", 5));

  v = decode_reply("$-1\r\n");
  REQUIRE(v);
  CHECK(v->type == Value::Type::nil);

  v = decode_reply("*3\r\n$6\r\nmaster\r\n:3129\r\n*2\r\n$9\r\n127.0.0.1\r\n*-1\r\n");
  REQUIRE(v);
  REQUIRE(v->type == Value::Type::array);
  REQUIRE(v->elements.size() == 3);
  CHECK(v->elements[0].str == "master");
  CHECK(v->elements[1].integer == 3129);
  REQUIRE(v->elements[2].elements.size() == 2);
  CHECK(v->elements[2].elements[0].str == "127.0.0.1");
  CHECK(v->elements[2].elements[1].type == Value::Type::nil);
}

TEST_CASE("decode_reply wants exactly one whole reply", "[value]") {
  CHECK_FALSE(decode_reply(""));
  CHECK_FALSE(decode_reply("+OK"));
  CHECK_FALSE(decode_reply("*2\r\n:1\r\n"));
  CHECK_FALSE(decode_reply("+OK\r\n+OK\r\n"));
  CHECK_FALSE(decode_reply("?\r\n"));
  CHECK(decode_reply(std::string(2000, ' ').replace(0, 1, "+") + "\r\n"));
}

TEST_CASE("encode_command writes a multibulk request the scanner frames", "[value]") {
  const std::string cmd = encode_command({"SET", "k", std::string_view("a\0b", 3)});
  CHECK(cmd == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na\0b\r\n"s);
  const std::vector<std::string> args = {"AUTH", "user", "p\r\nw"};
  const std::string auth = encode_command(args);
  tether::resp::RequestScanner s;
  REQUIRE(s.scan(auth) == tether::resp::ScanStatus::complete);
  CHECK(s.request().size == auth.size());
  CHECK(s.request().argc == 3);
  CHECK(s.request().name == "AUTH");
  CHECK(encode_command(std::vector<std::string>{}) == "*0\r\n");
}
