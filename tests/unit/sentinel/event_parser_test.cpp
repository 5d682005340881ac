// Sentinel pub/sub messages and SENTINEL MASTER replies, in the exact text Redis sends.
#include "tether/sentinel/event_parser.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace tether::sentinel;
using tether::util::Endpoint;

namespace {

const SentinelId kS = "10.0.1.1:26379";

Endpoint ep(const char* host, std::uint16_t port) {
  Endpoint e;
  e.host = host;
  e.port = port;
  return e;
}

std::optional<Event> parse(std::string_view channel, std::string_view payload) {
  return parse_pubsub_message(kS, "mymaster", channel, payload);
}

}  // namespace

TEST_CASE("event_parser: failover messages about our master") {
  const Endpoint a = ep("10.0.0.1", 6379);
  const Endpoint b = ep("10.0.0.2", 6380);
  CHECK(parse("+new-epoch", "6") == Event{NewEpoch{kS, 6}});
  CHECK(parse("+sdown", "master mymaster 10.0.0.1 6379") ==
        Event{MasterDown{kS, DownKind::sdown, true, a}});
  CHECK(parse("-sdown", "master mymaster 10.0.0.1 6379") ==
        Event{MasterDown{kS, DownKind::sdown, false, a}});
  CHECK(parse("+odown", "master mymaster 10.0.0.1 6379 #quorum 2/2") ==
        Event{MasterDown{kS, DownKind::odown, true, a}});
  CHECK(parse("-odown", "master mymaster 10.0.0.1 6379") ==
        Event{MasterDown{kS, DownKind::odown, false, a}});
  CHECK(parse("+try-failover", "master mymaster 10.0.0.1 6379") ==
        Event{TryFailover{kS, a, std::nullopt}});
  CHECK(parse("+try-failover", "master mymaster 10.0.0.1 6379 7") ==
        Event{TryFailover{kS, a, Epoch{7}}});
  CHECK(parse("+selected-slave", "slave 10.0.0.2:6380 10.0.0.2 6380 @ mymaster 10.0.0.1 6379") ==
        Event{ReplicaSelected{kS, b, a}});
  CHECK(parse("+promoted-slave", "slave 10.0.0.2:6380 10.0.0.2 6380 @ mymaster 10.0.0.1 6379") ==
        Event{ReplicaPromoted{kS, b, a}});
  CHECK(parse("-failover-abort-no-good-slave", "master mymaster 10.0.0.1 6379") ==
        Event{FailoverAborted{kS, a, "no-good-slave"}});
  CHECK(parse("-failover-abort-no-good-slave", "master mymaster 10.0.0.1 6379 7") ==
        Event{FailoverAborted{kS, a, "no-good-slave"}});
  CHECK(parse("-failover-abort-not-elected", "master mymaster 10.0.0.1 6379") ==
        Event{FailoverAborted{kS, a, "not-elected"}});
  CHECK(parse("+failover-end", "master mymaster 10.0.0.1 6379") == Event{FailoverEnded{kS, a}});
  CHECK(parse("+switch-master", "mymaster 10.0.0.1 6379 10.0.0.2 6380") ==
        Event{SwitchMaster{kS, a, b}});
}

TEST_CASE("event_parser: IPv6 and host names are kept as Sentinel wrote them") {
  CHECK(parse("+switch-master", "mymaster ::1 6379 fe80::2 6380") ==
        Event{SwitchMaster{kS, ep("::1", 6379), ep("fe80::2", 6380)}});
  CHECK(parse("+promoted-slave",
              "slave redis-b.internal:6379 redis-b.internal 6379 @ mymaster redis-a.internal "
              "6379") ==
        Event{ReplicaPromoted{kS, ep("redis-b.internal", 6379), ep("redis-a.internal", 6379)}});
}

TEST_CASE("event_parser: other masters, other instances and other channels are dropped") {
  CHECK_FALSE(parse("+sdown", "master othermaster 10.0.0.1 6379"));
  CHECK_FALSE(parse("+switch-master", "othermaster 10.0.0.1 6379 10.0.0.2 6379"));
  CHECK_FALSE(parse("+sdown", "slave 10.0.0.2:6379 10.0.0.2 6379 @ mymaster 10.0.0.1 6379"));
  CHECK_FALSE(parse("+sdown", "sentinel 0123abcd 10.0.1.2 26379 @ mymaster 10.0.0.1 6379"));
  CHECK_FALSE(
      parse("+promoted-slave", "slave 10.0.0.2:6379 10.0.0.2 6379 @ othermaster 10.0.0.1 6379"));
  CHECK_FALSE(parse("+promoted-slave", "master mymaster 10.0.0.1 6379"));
  CHECK_FALSE(parse("+elected-leader", "master mymaster 10.0.0.1 6379"));
  CHECK_FALSE(
      parse("+slave-reconf-sent", "slave 10.0.0.3:6379 10.0.0.3 6379 @ mymaster 10.0.0.1 6379"));
  CHECK_FALSE(parse("__sentinel__:hello", "10.0.1.2,26379,abcd,6,mymaster,10.0.0.1,6379,6"));
}

TEST_CASE("event_parser: malformed messages yield nothing") {
  for (const char* bad : {"", "master", "master mymaster 10.0.0.1", "master mymaster 10.0.0.1 x",
                          "master mymaster 10.0.0.1 0", "master mymaster 10.0.0.1 65536",
                          "master mymaster 10.0.0.1 6379x"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse("+odown", bad));
  }
  CHECK_FALSE(parse("+promoted-slave", "slave 10.0.0.2:6379 10.0.0.2 6379 mymaster 10.0.0.1 6379"));
  CHECK_FALSE(parse("+promoted-slave", "slave 10.0.0.2:6379 10.0.0.2 6379 @ mymaster 10.0.0.1"));
  CHECK_FALSE(parse("+switch-master", "mymaster 10.0.0.1 6379 10.0.0.2"));
  CHECK_FALSE(parse("+new-epoch", "six"));
  CHECK_FALSE(parse("+new-epoch", "6 7"));
  CHECK_FALSE(parse("+new-epoch", "-1"));
  CHECK_FALSE(parse("-failover-abort-", "master mymaster 10.0.0.1 6379"));
  std::string long_message = "master mymaster 10.0.0.1 6379";
  for (int i = 0; i < 20; ++i)
    long_message += " x";
  CHECK_FALSE(parse("+odown", long_message));
}

TEST_CASE("event_parser: every subscribed channel is understood") {
  for (std::string_view channel : kSubscribedChannels) {
    CAPTURE(channel);
    std::string payload = "master mymaster 10.0.0.1 6379";
    if (channel == "+new-epoch") payload = "3";
    if (channel == "+switch-master") payload = "mymaster 10.0.0.1 6379 10.0.0.2 6379";
    if (channel.ends_with("-slave") && channel[0] == '+') {
      payload = "slave 10.0.0.2:6379 10.0.0.2 6379 @ mymaster 10.0.0.1 6379";
    }
    CHECK(parse(channel, payload));
  }
}

TEST_CASE("event_parser: SENTINEL MASTER reply") {
  const std::vector<std::string_view> fields = {
      "name", "mymaster", "ip",     "10.0.0.2",     "port", "6380",   "runid",
      "abc",  "flags",    "master", "config-epoch", "6",    "quorum", "2"};
  std::string why;
  auto answer = parse_master_reply(kS, fields, &why);
  REQUIRE(answer);
  CHECK(*answer == PollAnswer{kS, ep("10.0.0.2", 6380), 6});

  // The leader between +promoted-slave and +switch-master.
  const std::vector<std::string_view> mid_failover = {
      "ip",           "10.0.0.1", "port", "6379", "flags", "master,failover_in_progress",
      "config-epoch", "7"};
  answer = parse_master_reply(kS, mid_failover, &why);
  REQUIRE(answer);
  CHECK(*answer == PollAnswer{kS, ep("10.0.0.1", 6379), 7, true});

  const std::vector<std::string_view> no_epoch = {"name",     "mymaster", "ip",
                                                  "10.0.0.2", "port",     "6380"};
  CHECK_FALSE(parse_master_reply(kS, no_epoch, &why));
  CHECK(why == "SENTINEL MASTER reply lacks ip, port or config-epoch");
  const std::vector<std::string_view> bad_port = {"ip", "10.0.0.2",     "port",
                                                  "x",  "config-epoch", "1"};
  CHECK_FALSE(parse_master_reply(kS, bad_port, &why));
  CHECK(why == "SENTINEL MASTER reply has a malformed ip or port");
  const std::vector<std::string_view> bad_epoch = {"ip", "10.0.0.2",     "port",
                                                   "1",  "config-epoch", "-3"};
  CHECK_FALSE(parse_master_reply(kS, bad_epoch, &why));
  CHECK(why == "SENTINEL MASTER reply has a malformed config-epoch");
  const std::vector<std::string_view> odd = {"ip", "10.0.0.2", "port"};
  CHECK_FALSE(parse_master_reply(kS, odd));
}

TEST_CASE("event_parser: unknown master error") {
  CHECK(is_unknown_master_error("ERR No such master with that name"));
  CHECK(is_unknown_master_error("No such master with that name"));
  CHECK_FALSE(is_unknown_master_error("NOAUTH Authentication required."));
  CHECK_FALSE(is_unknown_master_error(""));
}

TEST_CASE("event_parser: SENTINEL SENTINELS entry") {
  // As Redis 7.0 lists a peer (abridged; the order of fields is not relied on).
  const std::vector<std::string_view> up = {"name",
                                            "1f3c5e0b2a",
                                            "ip",
                                            "10.0.0.7",
                                            "port",
                                            "26380",
                                            "runid",
                                            "1f3c5e0b2a",
                                            "flags",
                                            "sentinel",
                                            "link-pending-commands",
                                            "0"};
  auto peer = parse_peer_sentinel(up);
  REQUIRE(peer);
  CHECK(peer->address.to_string() == "10.0.0.7:26380");
  CHECK(peer->run_id == "1f3c5e0b2a");
  CHECK(peer->reachable);

  const std::vector<std::string_view> down = {"flags", "s_down,sentinel", "ip", "10.0.0.8", "port",
                                              "26381"};
  peer = parse_peer_sentinel(down);
  REQUIRE(peer);
  CHECK_FALSE(peer->reachable);
  CHECK(peer->run_id.empty());

  const std::vector<std::string_view> disconnected = {"ip",    "10.0.0.8", "port",
                                                      "26381", "flags",    "sentinel,disconnected"};
  CHECK_FALSE(parse_peer_sentinel(disconnected)->reachable);

  const std::vector<std::string_view> no_port = {"ip", "10.0.0.8", "runid", "x"};
  CHECK_FALSE(parse_peer_sentinel(no_port));
  const std::vector<std::string_view> bad_port = {"ip", "10.0.0.8", "port", "99999"};
  CHECK_FALSE(parse_peer_sentinel(bad_port));
}
