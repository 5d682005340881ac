#include "tether/util/endpoint.hpp"

#include <catch2/catch.hpp>

using tether::util::Endpoint;
using tether::util::parse_endpoint;

TEST_CASE("parse_endpoint: tcp, ipv6 and unix forms") {
  auto a = parse_endpoint("127.0.0.1:6379");
  REQUIRE(a);
  CHECK(a->kind == Endpoint::Kind::tcp);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 6379);
  CHECK(a->to_string() == "127.0.0.1:6379");

  auto b = parse_endpoint("[::1]:6380");
  REQUIRE(b);
  CHECK(b->host == "::1");
  CHECK(b->to_string() == "[::1]:6380");

  auto c = parse_endpoint("unix:/run/redis-tether/main.sock");
  REQUIRE(c);
  CHECK(c->kind == Endpoint::Kind::unix_socket);
  CHECK(c->path == "/run/redis-tether/main.sock");
}

TEST_CASE("parse_endpoint: rejects malformed values with a reason") {
  for (const char* bad : {"", "6379", "host:", ":6379", "host:0", "host:65536", "host:12ab",
                          "::1:6379", "[::1]6379", "unix:"}) {
    std::string why;
    CAPTURE(bad);
    CHECK_FALSE(parse_endpoint(bad, &why));
    CHECK_FALSE(why.empty());
  }
  CHECK(parse_endpoint("host:65535"));
  CHECK_FALSE(parse_endpoint("unix:/" + std::string(107, 'x')));
  CHECK(parse_endpoint("unix:/" + std::string(106, 'x')));
}
