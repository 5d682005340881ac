// One command straight to a redis-server on 127.0.0.1, bypassing the proxy (as another
// client would), for tests to set up or check what the upstream holds. hiredis,
// blocking; fails the test if the server cannot be reached.
#pragma once

#include <hiredis/hiredis.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

namespace tether::testing {

// The reply as text: a string or status as is, an integer in decimal, nil as "(nil)".
// With db > 0 the command runs in that database (SELECT first).
inline std::string direct(std::uint16_t port, const char* cmd, int db = 0) {
  redisContext* c = redisConnect("127.0.0.1", port);
  REQUIRE(c != nullptr);
  REQUIRE(c->err == 0);
  if (db > 0) {
    auto* sel = static_cast<redisReply*>(redisCommand(c, "SELECT %d", db));
    REQUIRE(sel != nullptr);
    REQUIRE(sel->type == REDIS_REPLY_STATUS);
    freeReplyObject(sel);
  }
  auto* r = static_cast<redisReply*>(redisCommand(c, cmd));
  std::string out = r && r->str                       ? std::string(r->str, r->len)
                    : r && r->type == REDIS_REPLY_NIL ? "(nil)"
                    : r                               ? std::to_string(r->integer)
                                                      : "<null>";
  if (r) freeReplyObject(r);
  redisFree(c);
  return out;
}

}  // namespace tether::testing
