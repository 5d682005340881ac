// Resolver: failover sequences as Redis Sentinel publishes them, checked action by action.
#include "resolver_test_support.hpp"

using namespace tether::sentinel;
using namespace tether::sentinel::test;

TEST_CASE("resolver: ordinary kill, from +sdown to +switch-master") {
  Harness h;
  h.start_following();
  // The pool loses its connections to the killed master first.
  CHECK(h.feed(UpstreamLost{kA}) == Actions{requery_all(RequeryCause::upstream_lost)});
  for (const SentinelId& s : kAllSentinels) {
    CHECK(h.feed(MasterDown{s, DownKind::sdown, true, kA}) == Actions{down_report(s, "+sdown")});
  }
  h.now += 100ms;
  CHECK(h.feed(MasterDown{kS2, DownKind::odown, true, kA}) ==
        Actions{down_report(kS2, "+odown"), Hold{HoldCause::odown}});
  CHECK(h.resolver.phase() == Phase::holding);
  CHECK(h.feed(MasterDown{kS1, DownKind::odown, true, kA}) == Actions{down_report(kS1, "+odown")});
  CHECK(h.try_failover(kS2, 6) == Actions{attempt(kS2, 6)});
  CHECK(h.feed(NewEpoch{kS1, 6}).empty());  // S1 voting for S2
  CHECK(h.feed(ReplicaSelected{kS2, kB, kA}) ==
        Actions{note(NoteKind::replica_selected, kS2, "10.0.0.2:6379")});
  CHECK(h.feed(ReplicaPromoted{kS2, kB, kA}) == Actions{Probe{kB}});
  CHECK(h.resolver.phase() == Phase::switching);
  CHECK(h.resolver.master() == kA);

  h.now += 2ms;
  CHECK(h.feed(RoleConfirmed{kB}) == Actions{Retarget{kB, 6, RetargetCause::promoted_replica}});
  CHECK(h.resolver.master() == kB);
  CHECK(h.resolver.epoch() == 6);
  CHECK(h.resolver.phase() == Phase::following);
  CHECK(h.resolver.next_deadline() == std::nullopt);

  // The rest of the failover confirms what we already did.
  CHECK(h.feed(FailoverEnded{kS2, kA}).empty());
  for (const SentinelId& s : kAllSentinels)
    CHECK(h.feed(SwitchMaster{s, kA, kB}).empty());
  for (const SentinelId& s : kAllSentinels)
    CHECK(h.feed(PollAnswer{s, kB, 6}).empty());
  // Old-generation connections dying is no news.
  CHECK(h.feed(UpstreamLost{kA}).empty());
}

TEST_CASE("resolver: planned failover holds from +try-failover and never releases to the old") {
  Harness h;
  h.start_following();
  // SENTINEL FAILOVER: no +sdown, no +odown, no election.
  CHECK(h.try_failover(kS1, 6) == Actions{attempt(kS1, 6), Hold{HoldCause::try_failover}});
  CHECK(h.feed(ReplicaSelected{kS1, kC, kA}) ==
        Actions{note(NoteKind::replica_selected, kS1, "10.0.0.3:6379")});
  h.now += 1s;
  CHECK(h.feed(ReplicaPromoted{kS1, kC, kA}) == Actions{Probe{kC}});
  CHECK(h.feed(RoleConfirmed{kC}) == Actions{Retarget{kC, 6, RetargetCause::promoted_replica}});
  CHECK(h.feed(FailoverEnded{kS1, kA}).empty());
  for (const SentinelId& s : kAllSentinels)
    CHECK(h.feed(SwitchMaster{s, kA, kC}).empty());
  // Seconds later Sentinel converts the old master; its drained connections say so.
  h.now += 10s;
  CHECK(h.feed(UpstreamReadonly{kA}).empty());
  CHECK(h.feed(Tick{}).empty());
  CHECK(h.resolver.master() == kC);
}

TEST_CASE("resolver: the same events from three Sentinels, some twice, act once") {
  Harness h;
  h.start_following();
  for (const SentinelId& s : kAllSentinels) {
    CHECK(h.feed(MasterDown{s, DownKind::sdown, true, kA}) == Actions{down_report(s, "+sdown")});
    CHECK(h.feed(MasterDown{s, DownKind::sdown, true, kA}).empty());
  }
  CHECK(h.feed(MasterDown{kS1, DownKind::odown, true, kA}) ==
        Actions{down_report(kS1, "+odown"), Hold{HoldCause::odown}});
  CHECK(h.feed(MasterDown{kS1, DownKind::odown, true, kA}).empty());
  CHECK(h.feed(MasterDown{kS3, DownKind::odown, true, kA}) == Actions{down_report(kS3, "+odown")});
  // Two Sentinels try; the second attempt neither re-holds nor restarts the bound.
  const auto deadline = h.resolver.next_deadline();
  CHECK(h.try_failover(kS1, 6) == Actions{attempt(kS1, 6)});
  CHECK(h.feed(TryFailover{kS1, kA, std::nullopt}).empty());
  h.now += 300ms;
  CHECK(h.try_failover(kS3, 7) == Actions{attempt(kS3, 7)});
  CHECK(h.resolver.next_deadline() == deadline);

  CHECK(h.feed(ReplicaPromoted{kS3, kB, kA}) == Actions{Probe{kB}});
  CHECK(h.feed(ReplicaPromoted{kS3, kB, kA}).empty());
  CHECK(h.feed(RoleConfirmed{kB}) == Actions{Retarget{kB, 7, RetargetCause::promoted_replica}});
  CHECK(h.feed(RoleConfirmed{kB}).empty());
  for (int round = 0; round < 2; ++round) {
    for (const SentinelId& s : kAllSentinels) {
      CHECK(h.feed(SwitchMaster{s, kA, kB}).empty());
      CHECK(h.feed(PollAnswer{s, kB, 7}).empty());
    }
  }
  // The loser of the election gives up after its timeout: old news.
  CHECK(h.feed(FailoverAborted{kS1, kA, "not-elected"}).empty());
  CHECK(h.resolver.epoch() == 7);
}

TEST_CASE("resolver: +switch-master before +promoted-slave switches at once") {
  Harness h;
  h.start_following();
  CHECK(h.try_failover(kS1, 6) == Actions{attempt(kS1, 6), Hold{HoldCause::try_failover}});
  // A follower's +switch-master overtakes the leader's +promoted-slave on another link.
  CHECK(h.feed(SwitchMaster{kS2, kA, kB}) ==
        Actions{Retarget{kB, std::nullopt, RetargetCause::switch_master},
                requery_all(RequeryCause::learn_epoch)});
  CHECK(h.resolver.master() == kB);
  CHECK(h.resolver.epoch() == std::nullopt);
  CHECK(h.feed(ReplicaPromoted{kS1, kB, kA}).empty());
  CHECK(h.feed(SwitchMaster{kS1, kA, kB}).empty());
  // Before the requery's answers, a lagging Sentinel still names A at the old epoch.
  CHECK(h.feed(PollAnswer{kS3, kA, 5}) ==
        Actions{note(NoteKind::stale_claim_ignored, kS3,
                     "names 10.0.0.1:6379 at epoch 5; newest is 10.0.0.2:6379 at epoch >=6")});
  CHECK(h.feed(PollAnswer{kS1, kB, 6}).empty());
  CHECK(h.resolver.epoch() == 6);
}

TEST_CASE("resolver: +switch-master while the probe is out switches with the leader's epoch") {
  Harness h;
  h.start_following();
  CHECK(h.try_failover(kS1, 6) == Actions{attempt(kS1, 6), Hold{HoldCause::try_failover}});
  CHECK(h.feed(ReplicaPromoted{kS1, kB, kA}) == Actions{Probe{kB}});
  CHECK(h.feed(SwitchMaster{kS1, kA, kB}) ==
        Actions{Retarget{kB, 6, RetargetCause::switch_master}});
  CHECK(h.feed(RoleConfirmed{kB}).empty());  // the probe's late answer
}

TEST_CASE("resolver: an aborted failover releases the hold to the old master") {
  Harness h;
  h.start_following();
  CHECK(h.feed(MasterDown{kS1, DownKind::odown, true, kA}) ==
        Actions{down_report(kS1, "+odown"), Hold{HoldCause::odown}});
  CHECK(h.try_failover(kS1, 6) == Actions{attempt(kS1, 6)});
  CHECK(h.feed(FailoverAborted{kS1, kA, "no-good-slave"}) ==
        Actions{note(NoteKind::failover_aborted, kS1, "no-good-slave"),
                ReleaseHold{ReleaseCause::failover_aborted}});
  CHECK(h.resolver.phase() == Phase::following);
  CHECK(h.resolver.master() == kA);
  CHECK(h.resolver.next_deadline() == std::nullopt);
  // Duplicates and late reports of the same outage do not hold again...
  CHECK(h.feed(FailoverAborted{kS1, kA, "no-good-slave"}).empty());
  CHECK(h.feed(MasterDown{kS2, DownKind::odown, true, kA}) == Actions{down_report(kS2, "+odown")});
  // ...but Sentinel's retry (2 x failover-timeout later) is a new failover.
  h.now += 6s;
  CHECK(h.try_failover(kS1, 8) == Actions{attempt(kS1, 8), Hold{HoldCause::try_failover}});
}

TEST_CASE("resolver: -failover-abort-not-elected alone keeps the hold") {
  Harness h;
  h.start_following();
  CHECK(h.try_failover(kS1, 6) == Actions{attempt(kS1, 6), Hold{HoldCause::try_failover}});
  CHECK(h.try_failover(kS2, 7) == Actions{attempt(kS2, 7)});
  // S1 lost the election; S2 may still be failing over: keep holding.
  CHECK(h.feed(FailoverAborted{kS1, kA, "not-elected"}) ==
        Actions{note(NoteKind::failover_aborted, kS1, "not-elected")});
  CHECK(h.resolver.phase() == Phase::holding);
  CHECK(h.feed(FailoverAborted{kS2, kA, "not-elected"}) ==
        Actions{note(NoteKind::failover_aborted, kS2, "not-elected")});
  CHECK(h.resolver.phase() == Phase::holding);
  // A leader's real abort (its +try-failover was missed) ends it.
  CHECK(h.feed(FailoverAborted{kS3, kA, "slave-timeout"}) ==
        Actions{note(NoteKind::failover_aborted, kS3, "slave-timeout"),
                ReleaseHold{ReleaseCause::failover_aborted}});
}

TEST_CASE("resolver: an abort while another attempt runs waits for that one") {
  Harness h;
  h.start_following();
  CHECK(h.try_failover(kS1, 6) == Actions{attempt(kS1, 6), Hold{HoldCause::try_failover}});
  CHECK(h.try_failover(kS2, 7) == Actions{attempt(kS2, 7)});
  CHECK(h.feed(FailoverAborted{kS2, kA, "no-good-slave"}) ==
        Actions{note(NoteKind::failover_aborted, kS2, "no-good-slave")});
  CHECK(h.feed(FailoverAborted{kS1, kA, "not-elected"}) ==
        Actions{note(NoteKind::failover_aborted, kS1, "not-elected"),
                ReleaseHold{ReleaseCause::failover_aborted}});
}

TEST_CASE("resolver: the hold bound releases to the old master when nothing was promoted") {
  Harness h;
  h.start_following();
  CHECK(h.try_failover(kS1, 6) == Actions{attempt(kS1, 6), Hold{HoldCause::try_failover}});
  CHECK(h.resolver.next_deadline() == h.now + kHoldBound);
  CHECK(h.advance(kHoldBound - 1ms).empty());
  CHECK(h.advance(1ms) ==
        Actions{ReleaseHold{ReleaseCause::hold_bound}, requery_all(RequeryCause::hold_bound)});
  CHECK(h.resolver.phase() == Phase::following);
  CHECK(h.resolver.next_deadline() == std::nullopt);
  // The same attempt repeated is not a new failover.
  CHECK(h.feed(TryFailover{kS1, kA, std::nullopt}).empty());
}

TEST_CASE("resolver: a deadline passed between calls applies before the next event") {
  Harness h;
  h.start_following();
  CHECK(h.try_failover(kS1, 6) == Actions{attempt(kS1, 6), Hold{HoldCause::try_failover}});
  h.now += kHoldBound + 1s;  // the shell's Tick came late
  CHECK(h.feed(ReplicaPromoted{kS1, kB, kA}) ==
        Actions{ReleaseHold{ReleaseCause::hold_bound}, requery_all(RequeryCause::hold_bound),
                Hold{HoldCause::promoted_replica}, Probe{kB}});
}

TEST_CASE("resolver: -odown from every Sentinel with no attempt releases the hold") {
  Harness h;
  h.start_following();
  CHECK(h.feed(MasterDown{kS1, DownKind::odown, true, kA}) ==
        Actions{down_report(kS1, "+odown"), Hold{HoldCause::odown}});
  CHECK(h.feed(MasterDown{kS2, DownKind::odown, true, kA}) == Actions{down_report(kS2, "+odown")});
  CHECK(h.feed(MasterDown{kS1, DownKind::odown, false, kA}) == Actions{down_report(kS1, "-odown")});
  CHECK(h.feed(MasterDown{kS2, DownKind::odown, false, kA}) ==
        Actions{down_report(kS2, "-odown"), ReleaseHold{ReleaseCause::master_back}});
}

TEST_CASE("resolver: a Sentinel naming the old master with a lower epoch is ignored") {
  Harness h;
  h.start_following(kB, 6);
  const Note stale = note(NoteKind::stale_claim_ignored, kS3,
                          "names 10.0.0.1:6379 at epoch 5; newest is 10.0.0.2:6379 at epoch 6");
  CHECK(h.feed(PollAnswer{kS3, kA, 5}) == Actions{stale});
  CHECK(h.feed(PollAnswer{kS3, kA, 5}).empty());  // noted once, not every poll
  CHECK(h.feed(PollAnswer{kS3, kB, 6}).empty());  // it caught up
  CHECK(h.feed(PollAnswer{kS3, kA, 5}) == Actions{stale});
  // The same epoch naming another node is no newer either.
  CHECK(h.feed(PollAnswer{kS2, kC, 6}) ==
        Actions{note(NoteKind::stale_claim_ignored, kS2,
                     "names 10.0.0.3:6379 at epoch 6; newest is 10.0.0.2:6379 at epoch 6")});
  // The returning old master still claims master: it gets nothing.
  CHECK(h.feed(RoleConfirmed{kA}).empty());
  CHECK(h.feed(UpstreamReadonly{kA}).empty());
  CHECK(h.feed(SwitchMaster{kS3, kC, kA}) == Actions{requery_all(RequeryCause::out_of_step)});
  CHECK(h.resolver.master() == kB);
  // A genuinely newer configuration wins.
  CHECK(h.feed(PollAnswer{kS1, kC, 7}) == Actions{Retarget{kC, 7, RetargetCause::poll}});
}

TEST_CASE("resolver: a failed ROLE probe does not switch: +switch-master or the poll does") {
  Harness h;
  h.start_following();
  CHECK(h.try_failover(kS1, 6) == Actions{attempt(kS1, 6), Hold{HoldCause::try_failover}});
  CHECK(h.feed(ReplicaPromoted{kS1, kB, kA}) == Actions{Probe{kB}});
  CHECK(h.feed(RoleCheckFailed{kB, "role=slave"}) ==
        Actions{note(NoteKind::probe_failed, {}, "10.0.0.2:6379: role=slave"),
                requery_all(RequeryCause::probe_failed)});
  CHECK(h.resolver.master() == kA);
  CHECK(h.resolver.phase() == Phase::switching);
  CHECK(h.feed(RoleConfirmed{kB}).empty());  // no probe is out
  CHECK(h.feed(FailoverAborted{kS2, kA, "no-good-slave"}) ==
        Actions{note(NoteKind::failover_aborted, kS2, "no-good-slave")});

  // The bound passes, but A is superseded: probe again instead of releasing to it.
  CHECK(h.advance(kHoldBound) ==
        Actions{note(NoteKind::hold_bound_passed, {},
                     "promoted replica 10.0.0.2:6379 supersedes 10.0.0.1:6379; still holding"),
                Probe{kB}, requery_all(RequeryCause::hold_bound)});
  CHECK(h.resolver.next_deadline() == std::nullopt);
  CHECK(h.feed(RoleCheckFailed{kB, "connection refused"}) ==
        Actions{note(NoteKind::probe_failed, {}, "10.0.0.2:6379: connection refused"),
                requery_all(RequeryCause::probe_failed)});
  SECTION("+switch-master settles it") {
    CHECK(h.feed(SwitchMaster{kS2, kA, kB}) ==
          Actions{Retarget{kB, 6, RetargetCause::switch_master}});
  }
  SECTION("a poll answer settles it") {
    CHECK(h.feed(PollAnswer{kS1, kB, 6}) == Actions{Retarget{kB, 6, RetargetCause::poll}});
  }
}

TEST_CASE("resolver: a newer configuration naming the current master drops the candidate") {
  Harness h;
  h.start_following();
  CHECK(h.try_failover(kS1, 6) == Actions{attempt(kS1, 6), Hold{HoldCause::try_failover}});
  CHECK(h.feed(ReplicaPromoted{kS1, kB, kA}) == Actions{Probe{kB}});
  CHECK(h.feed(RoleCheckFailed{kB, "role=slave"}).size() == 2);
  // A later failover (epoch 7) made A master again: B is no candidate any more.
  CHECK(h.feed(PollAnswer{kS2, kA, 7}).empty());
  CHECK(h.resolver.phase() == Phase::holding);
  CHECK(h.advance(kHoldBound) ==
        Actions{ReleaseHold{ReleaseCause::hold_bound}, requery_all(RequeryCause::hold_bound)});
}

TEST_CASE("resolver: the leader's mid-failover answer (old address, new epoch) is not adopted") {
  // Seen with a proxy whose ROLE probes fail (wrong upstream password): the leader's
  // SENTINEL MASTER between +promoted-slave and +switch-master names the old master with
  // the attempt's epoch. Taking that as "A at epoch 6" made every later claim of B at
  // epoch 6 look stale, +switch-master included: the proxy never switched.
  Harness h;
  h.start_following();
  CHECK(h.try_failover(kS1, 6) == Actions{attempt(kS1, 6), Hold{HoldCause::try_failover}});
  CHECK(h.feed(ReplicaPromoted{kS1, kB, kA}) == Actions{Probe{kB}});
  CHECK(h.feed(RoleCheckFailed{kB, "AUTH failed"}).size() == 2);
  CHECK(h.feed(PollAnswer{kS1, kA, 6, true}).empty());
  CHECK(h.resolver.master() == kA);
  SECTION("the other Sentinels' answers then switch") {
    CHECK(h.feed(PollAnswer{kS2, kB, 6}) == Actions{Retarget{kB, 6, RetargetCause::poll}});
  }
  SECTION("+switch-master then switches") {
    CHECK(h.feed(SwitchMaster{kS2, kA, kB}) ==
          Actions{Retarget{kB, 6, RetargetCause::switch_master}});
  }
}
