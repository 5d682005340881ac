// Subscriptions: the bookkeeping of a subscriber's channels, patterns and shard channels,
// and the number of confirmations Redis sends for each command (checked against
// redis-server 7.0 by tests/integration/test_pubsub.py and tests/compat).
#include "tether/proxy/subscriptions.hpp"

#include <catch2/catch.hpp>

using tether::proxy::SubscriptionKind;
using tether::proxy::Subscriptions;
using K = SubscriptionKind;
using Args = std::vector<std::string>;

namespace {

Subscriptions::Command cmd(std::string_view upper) {
  auto c = Subscriptions::command(upper);
  REQUIRE(c);
  return *c;
}

}  // namespace

TEST_CASE("subscriptions: every SUBSCRIBE-family name, nothing else", "[subscriptions]") {
  CHECK(cmd("SUBSCRIBE").kind == K::channel);
  CHECK(cmd("SUBSCRIBE").subscribe);
  CHECK(cmd("UNSUBSCRIBE").kind == K::channel);
  CHECK_FALSE(cmd("UNSUBSCRIBE").subscribe);
  CHECK(cmd("PSUBSCRIBE").kind == K::pattern);
  CHECK_FALSE(cmd("PUNSUBSCRIBE").subscribe);
  CHECK(cmd("SSUBSCRIBE").kind == K::shard);
  CHECK_FALSE(cmd("SUNSUBSCRIBE").subscribe);
  for (const char* other : {"PUBLISH", "SPUBLISH", "PUBSUB", "PING", "subscribe", ""})
    CHECK_FALSE(Subscriptions::command(other));
}

TEST_CASE("subscriptions: added and removed by the client's commands", "[subscriptions]") {
  Subscriptions s;
  CHECK(s.count() == 0);
  // One confirmation per argument, a repeated name included; counted once.
  CHECK(s.apply(cmd("SUBSCRIBE"), Args{"a", "b", "a"}) == 3);
  CHECK(s.count(K::channel) == 2);
  CHECK(s.apply(cmd("PSUBSCRIBE"), Args{"p*"}) == 1);
  CHECK(s.apply(cmd("SSUBSCRIBE"), Args{"s1", "s2"}) == 2);
  CHECK(s.count() == 5);
  CHECK(s.names(K::pattern) == std::set<std::string>{"p*"});
  // Unsubscribing a name never subscribed is confirmed all the same.
  CHECK(s.apply(cmd("UNSUBSCRIBE"), Args{"a", "zz"}) == 2);
  CHECK(s.names(K::channel) == std::set<std::string>{"b"});
  // A kind's UNSUBSCRIBE touches only that kind.
  CHECK(s.apply(cmd("SUNSUBSCRIBE"), Args{"s1"}) == 1);
  CHECK(s.count(K::shard) == 1);
  CHECK(s.count(K::channel) == 1);
  CHECK(s.count() == 3);
}

TEST_CASE("subscriptions: UNSUBSCRIBE without arguments", "[subscriptions]") {
  Subscriptions s;
  // Nothing held: one confirmation (a nil name).
  CHECK(s.apply(cmd("UNSUBSCRIBE"), {}) == 1);
  CHECK(s.apply(cmd("PUNSUBSCRIBE"), {}) == 1);
  CHECK(s.apply(cmd("SUNSUBSCRIBE"), {}) == 1);
  s.apply(cmd("SUBSCRIBE"), Args{"a", "b", "c"});
  s.apply(cmd("PSUBSCRIBE"), Args{"x*", "y*"});
  // One per name removed, of that kind only.
  CHECK(s.apply(cmd("UNSUBSCRIBE"), {}) == 3);
  CHECK(s.count(K::channel) == 0);
  CHECK(s.count() == 2);
  CHECK(s.apply(cmd("PUNSUBSCRIBE"), {}) == 2);
  CHECK(s.count() == 0);  // back to normal commands
}

TEST_CASE("subscriptions: the count reaches 0 only when every kind is empty", "[subscriptions]") {
  Subscriptions s;
  s.apply(cmd("SUBSCRIBE"), Args{"a"});
  s.apply(cmd("SSUBSCRIBE"), Args{"s"});
  s.apply(cmd("UNSUBSCRIBE"), Args{"a"});
  CHECK(s.count() == 1);  // the shard channel still holds the client in subscriber mode
  s.apply(cmd("SUNSUBSCRIBE"), Args{"s"});
  CHECK(s.count() == 0);
}

TEST_CASE("subscriptions: a SUBSCRIBE without arguments is one error, nothing changes",
          "[subscriptions]") {
  Subscriptions s;
  CHECK(s.apply(cmd("SUBSCRIBE"), {}) == 1);
  CHECK(s.apply(cmd("SSUBSCRIBE"), {}) == 1);
  CHECK(s.count() == 0);
}

TEST_CASE("subscriptions: re-subscription requests name everything held", "[subscriptions]") {
  Subscriptions s;
  CHECK(s.resubscribe().empty());
  s.apply(cmd("SUBSCRIBE"), Args{"b", "a"});
  s.apply(cmd("SSUBSCRIBE"), Args{"s"});
  const auto r = s.resubscribe();
  REQUIRE(r.size() == 2);
  CHECK(r[0].request == "*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$1\r\nb\r\n");
  CHECK(r[0].confirmations == 2);
  CHECK(r[1].request == "*2\r\n$10\r\nSSUBSCRIBE\r\n$1\r\ns\r\n");
  CHECK(r[1].confirmations == 1);
  s.clear();
  CHECK(s.count() == 0);
}
