// Actions the Sentinel resolver asks of its Asio shell (the watcher) and, through it, of
// every worker's upstream pool. Returned in order from Resolver::handle(); the shell
// performs each one in that order and logs each as one line (describe()).
//
//   Retarget ──► every worker's Pool::retarget(master)      (new generation; ends a hold)
//   Hold ──────► pools stop sending new commands to the current master and hold them
//   ReleaseHold► pools resume sending to the current master
//   Probe ─────► dial the candidate, AUTH, ROLE; answer RoleConfirmed / RoleCheckFailed
//   Requery ───► poll SENTINEL MASTER now (one Sentinel, or every reachable one)
//   NoMaster ──► no master is known; pools use `reason` in the -NOMASTER errors
//   Note ──────► log line + counter only (a state change worth seeing, nothing to do)
//
// Every cause and note kind is a closed enum so it can label a metric.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "tether/sentinel/events.hpp"
#include "tether/util/endpoint.hpp"

namespace tether::sentinel {

enum class RetargetCause {
  startup,           // the first master, chosen from the start-up poll answers
  poll,              // a poll answer named another master with a newer epoch
  promoted_replica,  // the leader's +promoted-slave, confirmed by a ROLE probe
  switch_master,     // +switch-master from a Sentinel moving off our current master
};

enum class HoldCause {
  odown,              // a Sentinel declared the master objectively down
  try_failover,       // a Sentinel started a failover of the master
  promoted_replica,   // a replica was promoted before any other sign reached us
  upstream_readonly,  // the master answered -READONLY: it has been demoted
};

enum class ReleaseCause {
  failover_aborted,  // every failover attempt on the master was aborted
  master_back,       // every +odown was withdrawn (-odown) before any attempt
  hold_bound,        // ResolverSettings::hold_bound passed with no promotion seen
};

enum class RequeryCause {
  sentinel_connected,  // a (re)connected Sentinel may have missed events: poll it
  learn_epoch,         // switched on a sign without an epoch; learn the epoch
  out_of_step,         // an event implies a configuration we have not seen
  probe_failed,        // the promoted replica failed its ROLE probe
  hold_bound,          // the hold bound passed; look for a missed switch
  upstream_readonly,   // the master refused a write as a replica
  upstream_lost,       // a connection to the master was lost
};

enum class NoteKind {
  sentinel_up,          // a Sentinel link came up (first time, or after being lost)
  sentinel_lost,        // a Sentinel link failed; detail = cause and text
  all_sentinels_lost,   // no Sentinel reachable; the last known master keeps serving
  sentinels_back,       // a Sentinel is reachable again after all were lost
  unknown_master,       // a Sentinel does not monitor master_name
  master_down_report,   // a Sentinel's +sdown/-sdown/+odown/-odown on the master
  failover_attempt,     // a Sentinel started a failover; detail = its epoch
  replica_selected,     // the leader picked the replica to promote
  failover_aborted,     // a Sentinel aborted its failover; detail = why
  failover_ended,       // the leader finished the failover
  stale_claim_ignored,  // a Sentinel named a master older than the newest epoch seen
  probe_failed,         // the ROLE probe of the promoted replica failed
  hold_bound_passed,    // the hold bound passed after a promotion: still holding
};

// Switch the pools to `master`. `epoch` is the configuration epoch when known (it is
// learned by a following Requery otherwise). Ends any hold: the new generation takes the
// held commands once its connections confirm ROLE = master.
struct Retarget {
  util::Endpoint master;
  std::optional<Epoch> epoch;
  RetargetCause cause = RetargetCause::poll;
  friend bool operator==(const Retarget&, const Retarget&) = default;
};

// Stop sending new commands to the current master; hold them (pool bounds still apply:
// hold.timeout, hold.max_bytes). Commands already written complete normally.
struct Hold {
  HoldCause cause = HoldCause::odown;
  friend bool operator==(const Hold&, const Hold&) = default;
};

// Resume sending to the current master, which is still the newest configuration's.
struct ReleaseHold {
  ReleaseCause cause = ReleaseCause::failover_aborted;
  friend bool operator==(const ReleaseHold&, const ReleaseHold&) = default;
};

// Dial `candidate`, authenticate, send ROLE; feed back RoleConfirmed or RoleCheckFailed
// (also on timeout: the resolver waits for exactly one answer per Probe).
struct Probe {
  util::Endpoint candidate;
  friend bool operator==(const Probe&, const Probe&) = default;
};

// Poll SENTINEL MASTER <name> now, on `sentinel` only, or on every reachable Sentinel
// when it is empty. The shell coalesces: a Requery while a poll is in flight schedules
// one more poll after it.
struct Requery {
  std::optional<SentinelId> sentinel;
  RequeryCause cause = RequeryCause::out_of_step;
  friend bool operator==(const Requery&, const Requery&) = default;
};

// No master is known (start-up found none, or still finds none). `reason` names each
// Sentinel and what it said or what failed; re-emitted whenever it changes.
struct NoMaster {
  std::string reason;
  friend bool operator==(const NoMaster&, const NoMaster&) = default;
};

// A state change worth one log line and a counter; nothing to do.
struct Note {
  NoteKind kind = NoteKind::sentinel_up;
  SentinelId sentinel;  // empty when the note is not about one Sentinel
  std::string detail;
  friend bool operator==(const Note&, const Note&) = default;
};

using Action = std::variant<Retarget, Hold, ReleaseHold, Probe, Requery, NoMaster, Note>;

std::string_view to_string(RetargetCause cause);
std::string_view to_string(HoldCause cause);
std::string_view to_string(ReleaseCause cause);
std::string_view to_string(RequeryCause cause);
std::string_view to_string(NoteKind kind);

// One log line's key=value fields, e.g.
//   "event=master_switch master=10.0.0.2:6379 epoch=6 cause=promoted_replica"
//   "event=sentinel_lost sentinel=10.0.1.3:26379 detail=\"unreachable: connection refused\""
// Values containing spaces or quotes are double-quoted with '"' and '\' escaped.
std::string describe(const Action& action);

}  // namespace tether::sentinel
