// Events the Sentinel resolver consumes: what the watcher heard from each Sentinel, what
// the pool learned from the upstream, and the passage of time.
//
//   Sentinel links ──────────┐
//   pub/sub (event_parser) ──┤
//   poll answers ────────────┼──► Event ──► Resolver::handle(event, now) ──► Actions
//   pool: probe results, ────┤
//     -READONLY, lost master │
//   Tick (a deadline came) ──┘
//
// Plain values that mirror the wire: an event carries what the Sentinel said, nothing the
// watcher inferred. Every Sentinel-originated event names its Sentinel by id (the
// "host:port" the watcher dials); ids are all the resolver needs to tell Sentinels apart
// and to make duplicates from several of them idempotent. Events about master names other
// than the resolver's are dropped by the parser, never delivered.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "tether/util/endpoint.hpp"

namespace tether::sentinel {

// Sentinel's configuration epoch (config-epoch) or current epoch (+new-epoch). Starts at
// 0 for a freshly monitored master, so "unknown" is std::optional, never 0.
using Epoch = std::uint64_t;
// The endpoint string of a Sentinel, e.g. "10.0.1.1:26379".
using SentinelId = std::string;

// ---- Sentinel links (reported by the watcher) -------------------------------------

// The watcher is connected, authenticated and subscribed to this Sentinel.
struct SentinelConnected {
  SentinelId sentinel;
  friend bool operator==(const SentinelConnected&, const SentinelConnected&) = default;
};

enum class LinkFailure {
  unreachable,     // connect failed or timed out
  auth_failed,     // AUTH / HELLO refused (wrong sentinel_password or user)
  disconnected,    // an established link closed or stopped answering
  protocol_error,  // the peer answered something that is not a Sentinel's reply
};

// The link to this Sentinel is down. Reported on every failed attempt; the resolver
// notes only changes of cause or detail, so reconnect backoff does not flood the log.
struct SentinelLost {
  SentinelId sentinel;
  LinkFailure cause = LinkFailure::unreachable;
  std::string detail;  // e.g. "connection refused", the server's error text (never a secret)
  friend bool operator==(const SentinelLost&, const SentinelLost&) = default;
};

// ---- Pub/sub messages (typed by event_parser.hpp) ---------------------------------

// "+new-epoch <epoch>": the Sentinel's current epoch rose. A Sentinel starting a failover
// publishes it immediately before its "+try-failover", so it tells the attempt's epoch,
// which becomes the new configuration's epoch if that Sentinel promotes a replica.
struct NewEpoch {
  SentinelId sentinel;
  Epoch epoch = 0;
  friend bool operator==(const NewEpoch&, const NewEpoch&) = default;
};

enum class DownKind { sdown, odown };

// "+sdown"/"-sdown"/"+odown"/"-odown" about the master (not replicas or Sentinels).
struct MasterDown {
  SentinelId sentinel;
  DownKind kind = DownKind::sdown;
  bool down = true;  // '+' (entered) or '-' (left)
  util::Endpoint master;
  friend bool operator==(const MasterDown&, const MasterDown&) = default;
};

// "+try-failover master <name> <ip> <port>[ <epoch>]" (Redis 2.8 appended the epoch;
// later versions publish it in the preceding +new-epoch instead).
struct TryFailover {
  SentinelId sentinel;
  util::Endpoint master;
  std::optional<Epoch> epoch;
  friend bool operator==(const TryFailover&, const TryFailover&) = default;
};

// "+selected-slave slave <ip:port> <ip> <port> @ <name> <mip> <mport>".
struct ReplicaSelected {
  SentinelId sentinel;
  util::Endpoint replica;
  util::Endpoint master;
  friend bool operator==(const ReplicaSelected&, const ReplicaSelected&) = default;
};

// "+promoted-slave slave <ip:port> <ip> <port> @ <name> <old-ip> <old-port>": published
// by the failover leader only, at the instant it adopts the new configuration.
struct ReplicaPromoted {
  SentinelId sentinel;
  util::Endpoint replica;
  util::Endpoint old_master;
  friend bool operator==(const ReplicaPromoted&, const ReplicaPromoted&) = default;
};

// "-failover-abort-<why> master <name> <ip> <port>", e.g. why = "no-good-slave",
// "not-elected", "slave-timeout".
struct FailoverAborted {
  SentinelId sentinel;
  util::Endpoint master;
  std::string why;
  friend bool operator==(const FailoverAborted&, const FailoverAborted&) = default;
};

// "+failover-end master <name> <ip> <port>" (the leader finished; +switch-master follows).
struct FailoverEnded {
  SentinelId sentinel;
  util::Endpoint master;
  friend bool operator==(const FailoverEnded&, const FailoverEnded&) = default;
};

// "+switch-master <name> <old-ip> <old-port> <new-ip> <new-port>". Carries no epoch.
struct SwitchMaster {
  SentinelId sentinel;
  util::Endpoint old_master;
  util::Endpoint new_master;
  friend bool operator==(const SwitchMaster&, const SwitchMaster&) = default;
};

// ---- Poll answers (SENTINEL MASTER <name>) ----------------------------------------

// The Sentinel's configuration: master address and config-epoch. The poll must use
// SENTINEL MASTER (not get-master-addr-by-name, which has no epoch): comparing epochs is
// how a stale Sentinel is recognised.
//
// failover_in_progress (the reply's flags say so): the leader of a failover gives the
// master record its attempt's epoch at +promoted-slave, while the address stays the old
// master's until +switch-master. That epoch belongs to the promoted replica's
// configuration, so such an answer naming the old master must not be taken as "the old
// master at the new epoch" (which would make every later claim of the new master at that
// epoch look stale).
struct PollAnswer {
  SentinelId sentinel;
  util::Endpoint master;
  Epoch config_epoch = 0;
  bool failover_in_progress = false;
  friend bool operator==(const PollAnswer&, const PollAnswer&) = default;
};

// "-ERR No such master with that name": this Sentinel does not monitor master_name.
struct PollUnknownMaster {
  SentinelId sentinel;
  friend bool operator==(const PollUnknownMaster&, const PollUnknownMaster&) = default;
};

// ---- Pool side ------------------------------------------------------------------------

// A Probe action's answer: a fresh connection to `node` authenticated and ROLE said master.
struct RoleConfirmed {
  util::Endpoint node;
  friend bool operator==(const RoleConfirmed&, const RoleConfirmed&) = default;
};

// A Probe action's answer: dialling failed, or ROLE said something other than master.
struct RoleCheckFailed {
  util::Endpoint node;
  std::string detail;  // e.g. "role=slave", "connection refused"
  friend bool operator==(const RoleCheckFailed&, const RoleCheckFailed&) = default;
};

// The upstream answered -READONLY: the node the pool writes to is now a replica.
struct UpstreamReadonly {
  util::Endpoint node;
  friend bool operator==(const UpstreamReadonly&, const UpstreamReadonly&) = default;
};

// A connection of the current generation to `node` was lost.
struct UpstreamLost {
  util::Endpoint node;
  friend bool operator==(const UpstreamLost&, const UpstreamLost&) = default;
};

// ---- Time ---------------------------------------------------------------------------

// Nothing happened but time passed; sent when Resolver::next_deadline() is reached.
struct Tick {
  friend bool operator==(const Tick&, const Tick&) = default;
};

using Event = std::variant<SentinelConnected, SentinelLost, NewEpoch, MasterDown, TryFailover,
                           ReplicaSelected, ReplicaPromoted, FailoverAborted, FailoverEnded,
                           SwitchMaster, PollAnswer, PollUnknownMaster, RoleConfirmed,
                           RoleCheckFailed, UpstreamReadonly, UpstreamLost, Tick>;

std::string_view to_string(LinkFailure cause);

}  // namespace tether::sentinel
