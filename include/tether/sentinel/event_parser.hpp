// Turns what a Sentinel says into resolver Events: pub/sub messages and SENTINEL MASTER
// replies. Pure functions over strings the watcher already extracted from hiredis
// replies; no I/O, no hiredis types.
//
//   ("+switch-master", "mymaster 10.0.0.1 6379 10.0.0.2 6379") ──► SwitchMaster{...}
//   ("+sdown", "slave 10.0.0.3:6379 10.0.0.3 6379 @ mymaster ...") ──► nullopt (a replica)
//
// Message formats are Sentinel's sentinelEvent() "%@" form:
//   master:   "<type> <name> <ip> <port>[ extra...]"
//   others:   "<type> <name> <ip> <port> @ <master-name> <master-ip> <master-port>"
// Trailing extras ("#quorum 2/2", an epoch) are tolerated. Anything malformed, about
// another master name, or on a channel the resolver does not use yields nullopt.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "tether/sentinel/events.hpp"

namespace tether::sentinel {

// The channels the watcher subscribes to on every Sentinel (PSUBSCRIBE "*" also works:
// the rest are dropped here). "+new-epoch" is needed to learn a failover's epoch.
inline constexpr std::string_view kSubscribedChannels[] = {
    "+new-epoch",
    "+sdown",
    "-sdown",
    "+odown",
    "-odown",
    "+try-failover",
    "+selected-slave",
    "+promoted-slave",
    "-failover-abort-no-good-slave",
    "-failover-abort-not-elected",
    "-failover-abort-slave-timeout",
    "+failover-end",
    "+switch-master",
};

// One pub/sub message from `sentinel` on `channel`; events for masters other than
// `master_name` yield nullopt.
std::optional<Event> parse_pubsub_message(std::string_view sentinel, std::string_view master_name,
                                          std::string_view channel, std::string_view payload);

// A SENTINEL MASTER reply as its flat field/value list ("name", "mymaster", "ip", ...).
// Returns a PollAnswer, or nullopt with `why` set when ip, port or config-epoch is
// missing or malformed.
std::optional<PollAnswer> parse_master_reply(std::string_view sentinel,
                                             std::span<const std::string_view> fields,
                                             std::string* why = nullptr);

// Another Sentinel of the same master, from one entry of a SENTINEL SENTINELS reply.
struct PeerSentinel {
  util::Endpoint address;
  std::string run_id;
  bool reachable = true;  // false when its flags say s_down or disconnected
};

// One entry of a SENTINEL SENTINELS reply as its flat field/value list ("name", "ip",
// "port", "runid", "flags", ...). nullopt when ip or port is missing or malformed.
std::optional<PeerSentinel> parse_peer_sentinel(std::span<const std::string_view> fields);

// True for the error a Sentinel gives about a master it does not monitor
// ("ERR No such master with that name").
bool is_unknown_master_error(std::string_view error_text);

}  // namespace tether::sentinel
