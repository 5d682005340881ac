// Resolver, part 1: Sentinel links, poll answers, start-up, epochs and switching.
// Failover progress, pool feedback and the hold are in resolver_failover.cpp.
#include "tether/sentinel/resolver.hpp"

#include <algorithm>
#include <cassert>
#include <utility>

namespace tether::sentinel {

std::string_view to_string(Phase phase) {
  switch (phase) {
    case Phase::starting:
      return "starting";
    case Phase::no_master:
      return "no_master";
    case Phase::following:
      return "following";
    case Phase::holding:
      return "holding";
    case Phase::switching:
      return "switching";
  }
  return "unknown";
}

Resolver::Resolver(ResolverSettings settings, TimePoint now)
    : settings_(std::move(settings)), settle_deadline_(now + settings_.startup_settle) {
  // Validated by the configuration; a zero bound would release every hold at once.
  assert(settings_.hold_bound > std::chrono::milliseconds::zero());
  assert(settings_.startup_settle >= std::chrono::milliseconds::zero());
  for (const SentinelId& id : settings_.sentinels)
    sentinels_[id];
}

std::vector<Action> Resolver::handle(const Event& event, TimePoint now) {
  run_deadlines(now);
  std::visit([&](const auto& e) { on(e, now); }, event);
  return std::exchange(out_, {});
}

std::optional<Resolver::TimePoint> Resolver::next_deadline() const {
  std::optional<TimePoint> next;
  if (!settled_) next = settle_deadline_;
  if (hold_.active && !hold_.bound_passed) {
    next = next ? std::min(*next, hold_.deadline) : hold_.deadline;
  }
  return next;
}

Phase Resolver::phase() const {
  if (!settled_) return Phase::starting;
  if (!master_) return Phase::no_master;
  if (candidate_) return Phase::switching;
  if (hold_.active) return Phase::holding;
  return Phase::following;
}

std::optional<Epoch> Resolver::epoch() const {
  if (!master_ || !epoch_.exact) return std::nullopt;
  return epoch_.value;
}

std::size_t Resolver::sentinels_up() const {
  return static_cast<std::size_t>(
      std::count_if(sentinels_.begin(), sentinels_.end(),
                    [](const auto& s) { return s.second.link == Link::up; }));
}

void Resolver::forget(const SentinelId& sentinel) {
  sentinels_.erase(sentinel);
  attempts_.erase(sentinel);
  std::erase(settings_.sentinels, sentinel);
}

std::vector<Resolver::SentinelReport> Resolver::sentinel_reports() const {
  std::vector<SentinelReport> out;
  out.reserve(sentinels_.size());
  for (const auto& [id, v] : sentinels_) {
    SentinelReport r{id, v.link == Link::up, {}};
    if (v.link == Link::never) r.problem = "not connected yet";
    if (v.link == Link::down && v.failure) {
      r.problem = std::string(to_string(*v.failure));
      if (!v.failure_detail.empty()) r.problem += ": " + v.failure_detail;
    }
    out.push_back(std::move(r));
  }
  return out;
}

Resolver::SentinelView& Resolver::view(const SentinelId& id) {
  return sentinels_[id];
}

void Resolver::run_deadlines(TimePoint now) {
  if (!settled_ && now >= settle_deadline_) finish_startup();
  if (hold_.active && !hold_.bound_passed && now >= hold_.deadline) on_hold_bound();
}

void Resolver::on(const Tick&, TimePoint) {}

void Resolver::on(const NewEpoch& e, TimePoint) {
  view(e.sentinel).current_epoch = e.epoch;
}

// ---- Sentinel links -----------------------------------------------------------------

void Resolver::on(const SentinelConnected& e, TimePoint) {
  SentinelView& v = view(e.sentinel);
  if (v.link == Link::up) return;
  v.link = Link::up;
  v.failure.reset();
  v.failure_detail.clear();
  emit(Note{NoteKind::sentinel_up, e.sentinel, {}});
  if (all_lost_noted_) {
    all_lost_noted_ = false;
    emit(Note{NoteKind::sentinels_back, {}, {}});
  }
  // Events published while the link was down are gone: ask this Sentinel directly.
  emit(Requery{e.sentinel, RequeryCause::sentinel_connected});
}

void Resolver::on(const SentinelLost& e, TimePoint) {
  SentinelView& v = view(e.sentinel);
  if (v.link == Link::down && v.failure == e.cause && v.failure_detail == e.detail) return;
  const bool was_up = v.link == Link::up;
  v.link = Link::down;
  v.failure = e.cause;
  v.failure_detail = e.detail;
  v.reported = true;
  // Its view of the master is unknown from now on; withdrawing it triggers nothing.
  v.sdown = false;
  v.odown = false;
  std::string detail(to_string(e.cause));
  if (!e.detail.empty()) detail += ": " + e.detail;
  emit(Note{NoteKind::sentinel_lost, e.sentinel, std::move(detail)});
  if (was_up && sentinels_up() == 0) {
    all_lost_noted_ = true;
    emit(Note{NoteKind::all_sentinels_lost,
              {},
              master_ ? "keeping master " + master_->to_string() : "no master known"});
  }
  if (!settled_) {
    maybe_finish_startup();
  } else if (!master_) {
    maybe_no_master();
  }
}

// ---- Poll answers ---------------------------------------------------------------------

void Resolver::on(const PollUnknownMaster& e, TimePoint) {
  SentinelView& v = view(e.sentinel);
  v.reported = true;
  v.answer.reset();
  if (!v.unknown_master) {
    v.unknown_master = true;
    emit(Note{NoteKind::unknown_master, e.sentinel,
              "does not monitor '" + settings_.master_name + "'"});
  }
  if (!settled_) {
    maybe_finish_startup();
  } else if (!master_) {
    maybe_no_master();
  }
}

void Resolver::on(const PollAnswer& e, TimePoint) {
  SentinelView& v = view(e.sentinel);
  v.reported = true;
  v.unknown_master = false;
  v.answer = e;
  if (!settled_) return maybe_finish_startup();
  if (!master_) return switch_to(e.master, e.config_epoch, RetargetCause::poll);
  switch (classify(e.master, e.config_epoch)) {
    case Claim::same:
      v.last_stale_noted.clear();
      // Mid-failover the leader pairs our (old) master with the new epoch: not adopted.
      if (!e.failover_in_progress) adopt_epoch(e.config_epoch);
      break;
    case Claim::stale:
      note_stale(e.sentinel, e.master, e.config_epoch);
      break;
    case Claim::newer:
      switch_to(e.master, e.config_epoch, RetargetCause::poll);
      break;
    case Claim::no_epoch:  // a poll answer always carries its epoch
      break;
  }
}

// ---- Start-up -------------------------------------------------------------------------

void Resolver::maybe_finish_startup() {
  const bool all_reported = std::all_of(sentinels_.begin(), sentinels_.end(),
                                        [](const auto& s) { return s.second.reported; });
  if (all_reported) finish_startup();
}

void Resolver::finish_startup() {
  settled_ = true;
  std::optional<PollAnswer> best;
  for (const auto& [id, v] : sentinels_) {
    if (v.answer && (!best || v.answer->config_epoch > best->config_epoch)) best = v.answer;
  }
  if (!best) return maybe_no_master();
  switch_to(best->master, best->config_epoch, RetargetCause::startup);
  for (const auto& [id, v] : sentinels_) {
    if (v.answer && classify(v.answer->master, v.answer->config_epoch) == Claim::stale) {
      note_stale(id, v.answer->master, v.answer->config_epoch);
    }
  }
}

void Resolver::maybe_no_master() {
  std::string reason = no_master_reason();
  if (reason == no_master_reason_) return;
  no_master_reason_ = reason;
  emit(NoMaster{std::move(reason)});
}

std::string Resolver::no_master_reason() const {
  std::string reason = "no Sentinel names a master for '" + settings_.master_name + "'";
  if (sentinels_.empty()) return reason + ": no Sentinel configured";
  char sep = ':';
  for (const auto& [id, v] : sentinels_) {
    reason += sep;
    reason += ' ';
    reason += id;
    sep = ';';
    if (v.unknown_master) {
      reason += " does not monitor it";
    } else if (v.link == Link::down && v.failure) {
      reason += ' ';
      reason += to_string(*v.failure);
      if (!v.failure_detail.empty()) reason += ": " + v.failure_detail;
    } else {
      reason += " has not answered yet";
    }
  }
  return reason;
}

// ---- Epochs and switching -----------------------------------------------------------

Resolver::Claim Resolver::classify(const util::Endpoint& node, std::optional<Epoch> epoch) const {
  if (is_master(node)) return Claim::same;
  if (!epoch) return Claim::no_epoch;
  // Exact: the same epoch naming another node is a conflict, ignored like a stale claim.
  // At-least F: the true epoch is >= F, so a claim at <= F cannot be newer either.
  return *epoch <= epoch_.value ? Claim::stale : Claim::newer;
}

void Resolver::adopt_epoch(Epoch epoch) {
  const bool newer = epoch_.exact ? epoch > epoch_.value : epoch >= epoch_.value;
  if (!newer) return;
  epoch_ = {epoch, true};
  // A newer configuration still naming our master outdates a pending candidate.
  if (candidate_ && candidate_->epoch && *candidate_->epoch < epoch) candidate_.reset();
}

void Resolver::note_stale(const SentinelId& sentinel, const util::Endpoint& node, Epoch epoch) {
  SentinelView& v = view(sentinel);
  std::string claim = node.to_string() + " at epoch " + std::to_string(epoch);
  if (v.last_stale_noted == claim) return;
  v.last_stale_noted = claim;
  std::string newest = master_->to_string() + " at epoch " + (epoch_.exact ? "" : ">=") +
                       std::to_string(epoch_.value);
  emit(Note{NoteKind::stale_claim_ignored, sentinel, "names " + claim + "; newest is " + newest});
}

void Resolver::switch_to(const util::Endpoint& node, std::optional<Epoch> epoch,
                         RetargetCause cause) {
  // Sentinel gives every new configuration a strictly greater epoch than the one it
  // replaces, so a switch on a sign without an epoch still bounds it from below.
  if (epoch) {
    epoch_ = {*epoch, true};
  } else {
    epoch_ = {master_ ? epoch_.value + 1 : 0, false};
  }
  master_ = node;
  attempts_.clear();
  candidate_.reset();
  hold_ = HoldState{};
  for (auto& [id, v] : sentinels_) {
    v.sdown = false;
    v.odown = false;
  }
  no_master_reason_.clear();
  emit(Retarget{node, epoch, cause});
  if (!epoch) emit(Requery{std::nullopt, RequeryCause::learn_epoch});
}

}  // namespace tether::sentinel
