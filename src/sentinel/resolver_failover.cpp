// Resolver, part 2: failover progress from Sentinel pub/sub, feedback from the pool, and
// the hold. Links, polls, start-up and switching are in resolver.cpp.
#include <algorithm>
#include <utility>

#include "tether/sentinel/resolver.hpp"

namespace tether::sentinel {

namespace {

// A Sentinel that lost the leader election publishes this; it says nothing about whether
// the winner's failover goes on, so on its own it never releases a hold.
constexpr std::string_view kNotElected = "not-elected";

std::string epoch_text(std::optional<Epoch> epoch) {
  return epoch ? "epoch " + std::to_string(*epoch) : std::string("epoch unknown");
}

}  // namespace

std::optional<Epoch> Resolver::attempt_epoch(const SentinelId& sentinel) const {
  auto it = attempts_.find(sentinel);
  if (it == attempts_.end() || it->second.aborted) return std::nullopt;
  return it->second.epoch;
}

bool Resolver::any_odown() const {
  return std::any_of(sentinels_.begin(), sentinels_.end(),
                     [](const auto& s) { return s.second.odown; });
}

bool Resolver::any_active_attempt() const {
  return std::any_of(attempts_.begin(), attempts_.end(),
                     [](const auto& a) { return !a.second.aborted; });
}

// ---- The hold -------------------------------------------------------------------------

void Resolver::start_hold(HoldCause cause, TimePoint now) {
  hold_ = HoldState{};
  hold_.active = true;
  hold_.deadline = now + settings_.hold_bound;
  emit(Hold{cause});
}

// Releasing sends commands to the current master again, which is right only while it is
// still the newest configuration's master: never once a promotion has been seen.
void Resolver::maybe_release(ReleaseCause cause) {
  if (!hold_.active || candidate_) return;
  hold_ = HoldState{};
  emit(ReleaseHold{cause});
}

void Resolver::on_hold_bound() {
  hold_.bound_passed = true;
  if (!candidate_) {
    maybe_release(ReleaseCause::hold_bound);
    emit(Requery{std::nullopt, RequeryCause::hold_bound});
    return;
  }
  emit(Note{NoteKind::hold_bound_passed,
            {},
            "promoted replica " + candidate_->node.to_string() + " supersedes " +
                master_->to_string() + "; still holding"});
  if (!candidate_->probing) {
    candidate_->probing = true;
    emit(Probe{candidate_->node});
  }
  emit(Requery{std::nullopt, RequeryCause::hold_bound});
}

// ---- Failover progress ------------------------------------------------------------------

void Resolver::on(const MasterDown& e, TimePoint now) {
  if (!is_master(e.master)) return;
  SentinelView& v = view(e.sentinel);
  const bool odown = e.kind == DownKind::odown;
  bool& flag = odown ? v.odown : v.sdown;
  if (flag == e.down) return;
  const bool outage_began = odown && e.down && !any_odown();
  flag = e.down;
  emit(Note{NoteKind::master_down_report, e.sentinel,
            std::string(e.down ? "+" : "-") + (odown ? "odown" : "sdown")});
  if (outage_began && !hold_.active) start_hold(HoldCause::odown, now);
  if (odown && !e.down && !any_odown() && !any_active_attempt()) {
    maybe_release(ReleaseCause::master_back);
  }
}

void Resolver::on(const TryFailover& e, TimePoint now) {
  if (!is_master(e.master)) return;
  const std::optional<Epoch> epoch = e.epoch ? e.epoch : view(e.sentinel).current_epoch;
  auto it = attempts_.find(e.sentinel);
  if (it != attempts_.end() && !it->second.aborted && it->second.epoch == epoch) return;
  attempts_[e.sentinel] = Attempt{epoch};
  emit(Note{NoteKind::failover_attempt, e.sentinel, epoch_text(epoch)});
  if (!hold_.active) start_hold(HoldCause::try_failover, now);
}

void Resolver::on(const ReplicaSelected& e, TimePoint) {
  if (!is_master(e.master)) return;
  emit(Note{NoteKind::replica_selected, e.sentinel, e.replica.to_string()});
}

void Resolver::on(const ReplicaPromoted& e, TimePoint now) {
  if (!master_) {
    if (settled_) emit(Requery{std::nullopt, RequeryCause::out_of_step});
    return;
  }
  // Only the leader publishes +promoted-slave, at the instant its configuration takes
  // the epoch of its attempt, which its +new-epoch / +try-failover told us.
  const bool from_current = is_master(e.old_master);
  const std::optional<Epoch> epoch = from_current ? attempt_epoch(e.sentinel) : std::nullopt;
  switch (classify(e.replica, epoch)) {
    case Claim::same:
      if (epoch) adopt_epoch(*epoch);
      return;
    case Claim::stale:
      note_stale(e.sentinel, e.replica, *epoch);
      return;
    case Claim::newer:
    case Claim::no_epoch:
      break;
  }
  if (candidate_ && candidate_->node == e.replica) return;
  candidate_ = Candidate{e.replica, epoch, true};
  if (!hold_.active) start_hold(HoldCause::promoted_replica, now);
  emit(Probe{e.replica});
  if (!from_current) emit(Requery{std::nullopt, RequeryCause::out_of_step});
}

void Resolver::on(const FailoverAborted& e, TimePoint) {
  if (!is_master(e.master)) return;
  Attempt& attempt = attempts_[e.sentinel];  // created if its +try-failover was missed
  if (attempt.aborted) return;
  attempt.aborted = true;
  emit(Note{NoteKind::failover_aborted, e.sentinel, e.why});
  if (e.why != kNotElected) hold_.abort_seen = true;
  if (hold_.abort_seen && !any_active_attempt()) maybe_release(ReleaseCause::failover_aborted);
}

void Resolver::on(const FailoverEnded& e, TimePoint) {
  if (!is_master(e.master)) return;
  Attempt& attempt = attempts_[e.sentinel];
  if (attempt.ended) return;
  attempt.ended = true;
  emit(Note{NoteKind::failover_ended, e.sentinel, {}});
  // The leader's +switch-master follows; if we never saw its promotion, find it now.
  if (!candidate_) emit(Requery{std::nullopt, RequeryCause::out_of_step});
}

void Resolver::on(const SwitchMaster& e, TimePoint) {
  if (!master_) {
    if (settled_) emit(Requery{std::nullopt, RequeryCause::out_of_step});
    return;
  }
  // +switch-master carries no epoch; the promotion it confirms may have told us one.
  std::optional<Epoch> epoch;
  if (candidate_ && candidate_->node == e.new_master) epoch = candidate_->epoch;
  switch (classify(e.new_master, epoch)) {
    case Claim::same:
      return;
    case Claim::stale:
      note_stale(e.sentinel, e.new_master, *epoch);
      return;
    case Claim::newer:
    case Claim::no_epoch:
      break;
  }
  // A Sentinel moving off a master we are not on is catching up on, or ahead of, a
  // configuration we have not seen: let the epochs of a poll decide.
  if (!is_master(e.old_master)) {
    emit(Requery{std::nullopt, RequeryCause::out_of_step});
    return;
  }
  switch_to(e.new_master, epoch, RetargetCause::switch_master);
}

// ---- Pool feedback ----------------------------------------------------------------------

void Resolver::on(const RoleConfirmed& e, TimePoint) {
  if (!candidate_ || !candidate_->probing || candidate_->node != e.node) return;
  const Candidate confirmed = *candidate_;
  switch_to(confirmed.node, confirmed.epoch, RetargetCause::promoted_replica);
}

void Resolver::on(const RoleCheckFailed& e, TimePoint) {
  if (!candidate_ || !candidate_->probing || candidate_->node != e.node) return;
  // Not switching: +switch-master or a poll will name the master; the candidate still
  // keeps the hold from being released to the superseded master.
  candidate_->probing = false;
  emit(Note{NoteKind::probe_failed, {}, e.node.to_string() + ": " + e.detail});
  emit(Requery{std::nullopt, RequeryCause::probe_failed});
}

void Resolver::on(const UpstreamReadonly& e, TimePoint now) {
  // One -READONLY is enough; the flood that follows it changes nothing.
  if (!is_master(e.node) || hold_.active) return;
  start_hold(HoldCause::upstream_readonly, now);
  emit(Requery{std::nullopt, RequeryCause::upstream_readonly});
}

void Resolver::on(const UpstreamLost& e, TimePoint) {
  if (is_master(e.node)) emit(Requery{std::nullopt, RequeryCause::upstream_lost});
}

}  // namespace tether::sentinel
