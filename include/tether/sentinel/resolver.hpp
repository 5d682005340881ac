// Resolver: decides which node is the master of one Sentinel-managed service, and when
// to hold commands during a failover. Sans-I/O: events in, actions out, time passed in.
//
//   watcher (Asio) ──Event, now──► Resolver::handle ──► [Action...] ──┐
//        ▲                                                              │ performed in
//        └── probe results, poll answers, Tick at next_deadline() ◄─────┘ order
//
// Rules (DESIGN.md "Control path"; promises 2 and 4):
//  * Highest config-epoch wins. A claim naming another master with an epoch no newer
//    than ours is stale: ignored and noted once per Sentinel and claim.
//  * Switch on the first authoritative sign:
//      - the leader's +promoted-slave names the candidate: Probe it; RoleConfirmed
//        switches (its epoch is the leader's attempt epoch, learned from +new-epoch);
//      - +switch-master from any Sentinel that moves off our current master switches at
//        once (it is a committed configuration; every pool connection still checks ROLE);
//      - a poll answer naming another master with a newer epoch switches at once.
//    A switch without a known epoch records "newer than the previous epoch" and
//    requeries to learn it.
//  * Hold from the start of a failover: the first +odown, a new +try-failover, a
//    promotion, or -READONLY from the master. A Retarget ends the hold.
//  * Release the hold to the old master only while it is still the newest
//    configuration's master (no promotion seen): when every attempt was aborted (an
//    abort other than "not-elected" seen: a Sentinel that lost the election says nothing
//    about the winner), when every +odown was withdrawn with no attempt, or when
//    hold_bound passes. After a promotion the bound re-probes and requeries instead.
//  * Duplicates are idempotent: per-Sentinel flags and attempts change once; events about
//    a master other than the current one (late ones after a switch) are ignored.
//  * No Sentinel reachable: the last known master keeps being used (noted once).
//  * Start-up: the first master is the highest-epoch answer once every known Sentinel
//    has reported (answer, unknown master, link failure) or startup_settle has passed,
//    so one stale Sentinel cannot pick it alone. None: NoMaster with each cause.
//
// Threading: not thread-safe; owned by one watcher on one io_context.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "tether/sentinel/actions.hpp"
#include "tether/sentinel/events.hpp"
#include "tether/util/endpoint.hpp"

namespace tether::sentinel {

// How long a failover hold may keep commands from the old master when no promotion is
// seen. 10 s: a Sentinel failover (election with up to 1 s random desync, promotion
// seen through 1 s INFO refreshes) normally promotes within a few seconds, and an
// aborted one says so with -failover-abort-*; the bound only covers a failover that went
// silent. Released too early, writes reach the old master while a promotion may still
// come, and are lost with it; commands held longer than the pool's hold.timeout get
// -NOMASTER, an honest error, instead.
inline constexpr std::chrono::milliseconds kDefaultHoldBound{10'000};

// How long start-up waits for every known Sentinel to answer before choosing the first
// master from the answers it has. 500 ms: Sentinels on a LAN answer within milliseconds;
// this only bounds the delay one unreachable Sentinel (connect timeouts are longer)
// adds to start-up.
inline constexpr std::chrono::milliseconds kDefaultStartupSettle{500};

struct ResolverSettings {
  std::string master_name;            // SENTINEL MASTER <name>; used in reasons
  std::vector<SentinelId> sentinels;  // configured Sentinels; others join by their events
  std::chrono::milliseconds hold_bound = kDefaultHoldBound;          // > 0
  std::chrono::milliseconds startup_settle = kDefaultStartupSettle;  // >= 0
};

enum class Phase {
  starting,   // collecting start-up answers
  no_master,  // start-up found no master (NoMaster emitted)
  following,  // a master is known, commands flow to it
  holding,    // a failover is under way; commands are held
  switching,  // a promoted replica is known and awaits confirmation; commands are held
};

std::string_view to_string(Phase phase);

class Resolver {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;

  // `now` starts the start-up settle window.
  Resolver(ResolverSettings settings, TimePoint now);

  // Applies every deadline at or before `now` (as if Ticks had come), then `event`.
  // `now` must not go backwards between calls. Returns the actions, in order.
  std::vector<Action> handle(const Event& event, TimePoint now);

  // A reload: the bound applies to holds started from now on. > 0.
  void set_hold_bound(std::chrono::milliseconds bound) { settings_.hold_bound = bound; }
  // A reload dropped this Sentinel from the configuration: it no longer counts anywhere.
  void forget(const SentinelId& sentinel);

  // When to call handle(Tick{}, ...) next, if anything is scheduled.
  std::optional<TimePoint> next_deadline() const;

  // For /status and tests.
  Phase phase() const;
  const std::optional<util::Endpoint>& master() const { return master_; }
  // The current master's configuration epoch, when known exactly.
  std::optional<Epoch> epoch() const;
  std::size_t sentinels_up() const;
  // Every Sentinel known (configured or heard from), for /status.
  struct SentinelReport {
    SentinelId id;
    bool up = false;
    std::string problem;  // why it is not up ("unreachable: …"), else empty
  };
  std::vector<SentinelReport> sentinel_reports() const;

 private:
  enum class Link { never, up, down };
  struct SentinelView {
    Link link = Link::never;
    std::optional<LinkFailure> failure;
    std::string failure_detail;
    bool reported = false;  // answered, said unknown master, or failed (start-up)
    bool unknown_master = false;
    std::optional<PollAnswer> answer;    // last poll answer
    std::optional<Epoch> current_epoch;  // last +new-epoch
    bool sdown = false;                  // on the current master
    bool odown = false;
    std::string last_stale_noted;  // "addr@epoch" last noted as stale (dedupe)
  };
  // A failover attempt on the current master, by the Sentinel that started it (or an
  // abort or end heard from a Sentinel whose +try-failover we missed).
  struct Attempt {
    std::optional<Epoch> epoch;
    bool aborted = false;
    bool ended = false;
  };
  // What we know of the current master's epoch: exactly `value`, or at least `value`
  // (after switching on a sign that carried no epoch).
  struct EpochKnowledge {
    Epoch value = 0;
    bool exact = false;
  };
  struct HoldState {
    bool active = false;
    TimePoint deadline{};
    bool bound_passed = false;
    bool abort_seen = false;  // an abort other than "not-elected" since the hold began
  };
  struct Candidate {
    util::Endpoint node;
    std::optional<Epoch> epoch;
    bool probing = false;
  };
  enum class Claim { same, stale, newer, no_epoch };

  // resolver.cpp: links, polls, start-up, switching, deadlines
  void on(const SentinelConnected& e, TimePoint now);
  void on(const SentinelLost& e, TimePoint now);
  void on(const PollAnswer& e, TimePoint now);
  void on(const PollUnknownMaster& e, TimePoint now);
  void on(const NewEpoch& e, TimePoint now);
  void on(const Tick& e, TimePoint now);
  void run_deadlines(TimePoint now);
  void maybe_finish_startup();
  void finish_startup();
  void maybe_no_master();
  std::string no_master_reason() const;
  Claim classify(const util::Endpoint& node, std::optional<Epoch> epoch) const;
  void adopt_epoch(Epoch epoch);
  void note_stale(const SentinelId& sentinel, const util::Endpoint& node, Epoch epoch);
  void switch_to(const util::Endpoint& node, std::optional<Epoch> epoch, RetargetCause cause);
  SentinelView& view(const SentinelId& id);

  // resolver_failover.cpp: failover progress, pool feedback, the hold
  void on(const MasterDown& e, TimePoint now);
  void on(const TryFailover& e, TimePoint now);
  void on(const ReplicaSelected& e, TimePoint now);
  void on(const ReplicaPromoted& e, TimePoint now);
  void on(const FailoverAborted& e, TimePoint now);
  void on(const FailoverEnded& e, TimePoint now);
  void on(const SwitchMaster& e, TimePoint now);
  void on(const RoleConfirmed& e, TimePoint now);
  void on(const RoleCheckFailed& e, TimePoint now);
  void on(const UpstreamReadonly& e, TimePoint now);
  void on(const UpstreamLost& e, TimePoint now);
  bool is_master(const util::Endpoint& node) const { return master_ && *master_ == node; }
  std::optional<Epoch> attempt_epoch(const SentinelId& sentinel) const;
  bool any_odown() const;
  bool any_active_attempt() const;
  void start_hold(HoldCause cause, TimePoint now);
  void maybe_release(ReleaseCause cause);
  void on_hold_bound();

  // Constructs the alternative in place: moving a whole Action variant trips GCC 12's
  // -Wmaybe-uninitialized false positive (an alternative's strings "may be uninitialized").
  template <class A>
  void emit(A&& action) {
    out_.emplace_back(std::in_place_type<std::decay_t<A>>, std::forward<A>(action));
  }

  ResolverSettings settings_;
  TimePoint settle_deadline_;
  bool settled_ = false;
  std::optional<util::Endpoint> master_;
  EpochKnowledge epoch_;
  std::map<SentinelId, SentinelView> sentinels_;
  std::map<SentinelId, Attempt> attempts_;
  HoldState hold_;
  std::optional<Candidate> candidate_;
  bool all_lost_noted_ = false;
  std::string no_master_reason_;  // last NoMaster reason emitted
  std::vector<Action> out_;
};

}  // namespace tether::sentinel
