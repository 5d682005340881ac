// Names of the resolver's enums (metric labels) and the one-line rendering of actions.
#include "tether/sentinel/actions.hpp"

#include <iterator>

namespace tether::sentinel {

namespace {

// Log values: bare when they are one plain word, else double-quoted with '"' and '\'
// escaped, so a line always splits back into its key=value fields.
std::string quoted(std::string_view value) {
  const bool plain = !value.empty() && value.find_first_of(" \"\\=\t\n") == std::string_view::npos;
  if (plain) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

void field(std::string& line, std::string_view key, std::string_view value) {
  line += ' ';
  line += key;
  line += '=';
  line += quoted(value);
}

std::string describe_one(const Retarget& a) {
  std::string line = "event=master_switch";
  field(line, "master", a.master.to_string());
  field(line, "epoch", a.epoch ? std::to_string(*a.epoch) : "unknown");
  field(line, "cause", to_string(a.cause));
  return line;
}

std::string describe_one(const Hold& a) {
  std::string line = "event=hold_started";
  field(line, "cause", to_string(a.cause));
  return line;
}

std::string describe_one(const ReleaseHold& a) {
  std::string line = "event=hold_released";
  field(line, "cause", to_string(a.cause));
  return line;
}

std::string describe_one(const Probe& a) {
  std::string line = "event=probe";
  field(line, "candidate", a.candidate.to_string());
  return line;
}

std::string describe_one(const Requery& a) {
  std::string line = "event=requery";
  field(line, "sentinel", a.sentinel ? std::string_view(*a.sentinel) : "all");
  field(line, "cause", to_string(a.cause));
  return line;
}

std::string describe_one(const NoMaster& a) {
  std::string line = "event=no_master";
  field(line, "reason", a.reason);
  return line;
}

std::string describe_one(const Note& a) {
  std::string line = "event=";
  line += to_string(a.kind);
  if (!a.sentinel.empty()) field(line, "sentinel", a.sentinel);
  if (!a.detail.empty()) field(line, "detail", a.detail);
  return line;
}

}  // namespace

std::string_view to_string(LinkFailure cause) {
  switch (cause) {
    case LinkFailure::unreachable:
      return "unreachable";
    case LinkFailure::auth_failed:
      return "auth_failed";
    case LinkFailure::disconnected:
      return "disconnected";
    case LinkFailure::protocol_error:
      return "protocol_error";
  }
  return "unknown";
}

std::string_view to_string(RetargetCause cause) {
  switch (cause) {
    case RetargetCause::startup:
      return "startup";
    case RetargetCause::poll:
      return "poll";
    case RetargetCause::promoted_replica:
      return "promoted_replica";
    case RetargetCause::switch_master:
      return "switch_master";
  }
  return "unknown";
}

std::string_view to_string(HoldCause cause) {
  switch (cause) {
    case HoldCause::odown:
      return "odown";
    case HoldCause::try_failover:
      return "try_failover";
    case HoldCause::promoted_replica:
      return "promoted_replica";
    case HoldCause::upstream_readonly:
      return "upstream_readonly";
  }
  return "unknown";
}

std::string_view to_string(ReleaseCause cause) {
  switch (cause) {
    case ReleaseCause::failover_aborted:
      return "failover_aborted";
    case ReleaseCause::master_back:
      return "master_back";
    case ReleaseCause::hold_bound:
      return "hold_bound";
  }
  return "unknown";
}

std::string_view to_string(RequeryCause cause) {
  switch (cause) {
    case RequeryCause::sentinel_connected:
      return "sentinel_connected";
    case RequeryCause::learn_epoch:
      return "learn_epoch";
    case RequeryCause::out_of_step:
      return "out_of_step";
    case RequeryCause::probe_failed:
      return "probe_failed";
    case RequeryCause::hold_bound:
      return "hold_bound";
    case RequeryCause::upstream_readonly:
      return "upstream_readonly";
    case RequeryCause::upstream_lost:
      return "upstream_lost";
  }
  return "unknown";
}

std::string_view to_string(NoteKind kind) {
  // A table rather than a switch: the enum is long and the names are the identifiers.
  static constexpr std::string_view kNames[] = {
      "sentinel_up",       "sentinel_lost",      "all_sentinels_lost",  "sentinels_back",
      "unknown_master",    "master_down_report", "failover_attempt",    "replica_selected",
      "failover_aborted",  "failover_ended",     "stale_claim_ignored", "probe_failed",
      "hold_bound_passed",
  };
  static_assert(std::size(kNames) == static_cast<std::size_t>(NoteKind::hold_bound_passed) + 1);
  const auto index = static_cast<std::size_t>(kind);
  return index < std::size(kNames) ? kNames[index] : "unknown";
}

std::string describe(const Action& action) {
  return std::visit([](const auto& a) { return describe_one(a); }, action);
}

}  // namespace tether::sentinel
