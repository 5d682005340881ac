// Resolver: start-up, Sentinel links, pool feedback and out-of-order events.
#include "resolver_test_support.hpp"

using namespace tether::sentinel;
using namespace tether::sentinel::test;

TEST_CASE("resolver: start-up takes the highest epoch once every Sentinel answered") {
  Harness h;
  CHECK(h.resolver.phase() == Phase::starting);
  CHECK(h.resolver.next_deadline() == h.start + kSettle);
  h.connect_all();
  // A stale Sentinel answering first cannot choose the first master alone.
  CHECK(h.feed(PollAnswer{kS3, kA, 5}).empty());
  CHECK(h.feed(PollAnswer{kS1, kB, 6}).empty());
  CHECK(h.feed(PollAnswer{kS2, kB, 6}) ==
        Actions{Retarget{kB, 6, RetargetCause::startup},
                note(NoteKind::stale_claim_ignored, kS3,
                     "names 10.0.0.1:6379 at epoch 5; newest is 10.0.0.2:6379 at epoch 6")});
  CHECK(h.resolver.phase() == Phase::following);
  CHECK(h.resolver.next_deadline() == std::nullopt);
}

TEST_CASE("resolver: start-up settles after startup_settle without the silent Sentinel") {
  Harness h;
  CHECK(h.feed(SentinelConnected{kS1}).size() == 2);
  CHECK(h.feed(PollAnswer{kS1, kA, 5}).empty());
  CHECK(h.advance(kSettle - 1ms).empty());
  CHECK(h.advance(1ms) == Actions{Retarget{kA, 5, RetargetCause::startup}});
}

TEST_CASE("resolver: nobody answering at start-up is a NoMaster naming each Sentinel") {
  Harness h;
  CHECK(h.feed(SentinelConnected{kS1}).size() == 2);
  CHECK(h.advance(kSettle) ==
        Actions{NoMaster{"no Sentinel names a master for 'mymaster': 10.0.1.1:26379 has not "
                         "answered yet; 10.0.1.2:26379 has not answered yet; 10.0.1.3:26379 has "
                         "not answered yet"}});
  CHECK(h.resolver.phase() == Phase::no_master);
  CHECK(h.feed(PollAnswer{kS1, kA, 5}) == Actions{Retarget{kA, 5, RetargetCause::poll}});
}

TEST_CASE("resolver: unknown master name at start-up says why, then follows when it appears") {
  Harness h;
  CHECK(h.feed(SentinelConnected{kS1}).size() == 2);
  CHECK(h.feed(SentinelConnected{kS2}).size() == 2);
  CHECK(h.feed(PollUnknownMaster{kS1}) ==
        Actions{note(NoteKind::unknown_master, kS1, "does not monitor 'mymaster'")});
  CHECK(h.feed(PollUnknownMaster{kS2}) ==
        Actions{note(NoteKind::unknown_master, kS2, "does not monitor 'mymaster'")});
  CHECK(h.feed(SentinelLost{kS3, LinkFailure::auth_failed, "WRONGPASS invalid password"}) ==
        Actions{note(NoteKind::sentinel_lost, kS3, "auth_failed: WRONGPASS invalid password"),
                NoMaster{"no Sentinel names a master for 'mymaster': 10.0.1.1:26379 does not "
                         "monitor it; 10.0.1.2:26379 does not monitor it; 10.0.1.3:26379 "
                         "auth_failed: WRONGPASS invalid password"}});
  CHECK(h.resolver.phase() == Phase::no_master);
  CHECK(h.resolver.master() == std::nullopt);
  // Retries that fail the same way change nothing; a new cause updates the reason.
  CHECK(h.feed(PollUnknownMaster{kS1}).empty());
  CHECK(h.feed(SentinelLost{kS3, LinkFailure::auth_failed, "WRONGPASS invalid password"}).empty());
  CHECK(h.feed(SentinelLost{kS3, LinkFailure::unreachable, "connection refused"}) ==
        Actions{note(NoteKind::sentinel_lost, kS3, "unreachable: connection refused"),
                NoMaster{"no Sentinel names a master for 'mymaster': 10.0.1.1:26379 does not "
                         "monitor it; 10.0.1.2:26379 does not monitor it; 10.0.1.3:26379 "
                         "unreachable: connection refused"}});
  // Events need a master to compare against; a switch asks the Sentinels instead.
  CHECK(h.feed(MasterDown{kS1, DownKind::odown, true, kA}).empty());
  CHECK(h.feed(SwitchMaster{kS1, kA, kB}) == Actions{requery_all(RequeryCause::out_of_step)});
  // The operator runs SENTINEL MONITOR.
  CHECK(h.feed(PollAnswer{kS2, kA, 0}) == Actions{Retarget{kA, 0, RetargetCause::poll}});
  CHECK(h.resolver.epoch() == 0);
}

TEST_CASE("resolver: every Sentinel lost keeps the last master, their return resumes following") {
  Harness h;
  h.start_following();
  CHECK(h.feed(SentinelLost{kS1, LinkFailure::disconnected, "connection reset by peer"}) ==
        Actions{note(NoteKind::sentinel_lost, kS1, "disconnected: connection reset by peer")});
  CHECK(h.feed(SentinelLost{kS1, LinkFailure::unreachable, "connection refused"}) ==
        Actions{note(NoteKind::sentinel_lost, kS1, "unreachable: connection refused")});
  CHECK(h.feed(SentinelLost{kS1, LinkFailure::unreachable, "connection refused"}).empty());
  CHECK(h.feed(SentinelLost{kS2, LinkFailure::unreachable, "timeout"}) ==
        Actions{note(NoteKind::sentinel_lost, kS2, "unreachable: timeout")});
  CHECK(h.feed(SentinelLost{kS3, LinkFailure::unreachable, "timeout"}) ==
        Actions{note(NoteKind::sentinel_lost, kS3, "unreachable: timeout"),
                note(NoteKind::all_sentinels_lost, {}, "keeping master 10.0.0.1:6379")});
  CHECK(h.resolver.sentinels_up() == 0);
  CHECK(h.resolver.master() == kA);
  CHECK(h.resolver.phase() == Phase::following);
  h.now += 1min;
  CHECK(h.feed(Tick{}).empty());
  CHECK(h.resolver.master() == kA);

  CHECK(h.feed(SentinelConnected{kS2}) == Actions{note(NoteKind::sentinel_up, kS2),
                                                  note(NoteKind::sentinels_back),
                                                  Requery{kS2, RequeryCause::sentinel_connected}});
  CHECK(h.feed(SentinelConnected{kS2}).empty());
  // A failover happened while we could not hear it.
  CHECK(h.feed(PollAnswer{kS2, kB, 7}) == Actions{Retarget{kB, 7, RetargetCause::poll}});
  CHECK(h.feed(SentinelConnected{kS1}) ==
        Actions{note(NoteKind::sentinel_up, kS1), Requery{kS1, RequeryCause::sentinel_connected}});
}

TEST_CASE("resolver: losing every Sentinel mid-failover still ends the hold at its bound") {
  Harness h;
  h.start_following();
  CHECK(h.try_failover(kS1, 6) == Actions{attempt(kS1, 6), Hold{HoldCause::try_failover}});
  CHECK(h.feed(SentinelLost{kS1, LinkFailure::disconnected, "eof"}).size() == 1);
  CHECK(h.feed(SentinelLost{kS2, LinkFailure::disconnected, "eof"}).size() == 1);
  CHECK(h.feed(SentinelLost{kS3, LinkFailure::disconnected, "eof"}).size() == 2);
  CHECK(h.advance(kHoldBound) ==
        Actions{ReleaseHold{ReleaseCause::hold_bound}, requery_all(RequeryCause::hold_bound)});
  CHECK(h.resolver.master() == kA);
}

TEST_CASE("resolver: -READONLY from the master holds and requeries once") {
  Harness h;
  h.start_following();
  CHECK(h.feed(UpstreamReadonly{kA}) ==
        Actions{Hold{HoldCause::upstream_readonly}, requery_all(RequeryCause::upstream_readonly)});
  CHECK(h.feed(UpstreamReadonly{kA}).empty());
  CHECK(h.feed(UpstreamLost{kA}) == Actions{requery_all(RequeryCause::upstream_lost)});
  CHECK(h.feed(PollAnswer{kS1, kA, 5}).empty());
  CHECK(h.feed(PollAnswer{kS2, kB, 6}) == Actions{Retarget{kB, 6, RetargetCause::poll}});
  CHECK(h.resolver.phase() == Phase::following);
}

TEST_CASE("resolver: out-of-order and missed events") {
  Harness h;
  h.start_following();
  SECTION("a promotion whose failover start was missed holds and probes") {
    CHECK(h.feed(ReplicaPromoted{kS1, kB, kA}) ==
          Actions{Hold{HoldCause::promoted_replica}, Probe{kB}});
    CHECK(h.feed(RoleConfirmed{kB}) ==
          Actions{Retarget{kB, std::nullopt, RetargetCause::promoted_replica},
                  requery_all(RequeryCause::learn_epoch)});
  }
  SECTION("+failover-end with no promotion seen asks the Sentinels") {
    CHECK(h.try_failover(kS1, 6) == Actions{attempt(kS1, 6), Hold{HoldCause::try_failover}});
    CHECK(h.feed(FailoverEnded{kS1, kA}) ==
          Actions{note(NoteKind::failover_ended, kS1), requery_all(RequeryCause::out_of_step)});
    CHECK(h.feed(FailoverEnded{kS1, kA}).empty());
    CHECK(h.feed(PollAnswer{kS1, kC, 6}) == Actions{Retarget{kC, 6, RetargetCause::poll}});
  }
  SECTION("a promotion from a master we are not on is probed and checked by a poll") {
    CHECK(h.feed(ReplicaPromoted{kS1, kC, kB}) == Actions{Hold{HoldCause::promoted_replica},
                                                          Probe{kC},
                                                          requery_all(RequeryCause::out_of_step)});
    CHECK(h.feed(PollAnswer{kS1, kC, 8}) == Actions{Retarget{kC, 8, RetargetCause::poll}});
  }
  SECTION("a second promotion replaces the candidate") {
    CHECK(h.try_failover(kS1, 6) == Actions{attempt(kS1, 6), Hold{HoldCause::try_failover}});
    CHECK(h.feed(ReplicaPromoted{kS1, kB, kA}) == Actions{Probe{kB}});
    CHECK(h.try_failover(kS2, 7) == Actions{attempt(kS2, 7)});
    CHECK(h.feed(ReplicaPromoted{kS2, kC, kA}) == Actions{Probe{kC}});
    CHECK(h.feed(RoleConfirmed{kB}).empty());
    CHECK(h.feed(RoleConfirmed{kC}) == Actions{Retarget{kC, 7, RetargetCause::promoted_replica}});
  }
  SECTION("late events about the old master after a switch are ignored") {
    CHECK(h.feed(PollAnswer{kS1, kB, 6}) == Actions{Retarget{kB, 6, RetargetCause::poll}});
    CHECK(h.feed(MasterDown{kS3, DownKind::odown, true, kA}).empty());
    CHECK(h.try_failover(kS3, 6).empty());
    CHECK(h.feed(ReplicaSelected{kS3, kC, kA}).empty());
    CHECK(h.feed(FailoverAborted{kS3, kA, "not-elected"}).empty());
    CHECK(h.feed(FailoverEnded{kS1, kA}).empty());
    CHECK(h.feed(UpstreamLost{kA}).empty());
    CHECK(h.feed(UpstreamReadonly{kA}).empty());
    CHECK(h.resolver.phase() == Phase::following);
  }
  SECTION("an abort whose +try-failover was missed still releases") {
    CHECK(h.feed(MasterDown{kS2, DownKind::odown, true, kA}) ==
          Actions{down_report(kS2, "+odown"), Hold{HoldCause::odown}});
    CHECK(h.feed(FailoverAborted{kS2, kA, "no-good-slave"}) ==
          Actions{note(NoteKind::failover_aborted, kS2, "no-good-slave"),
                  ReleaseHold{ReleaseCause::failover_aborted}});
  }
  SECTION("+switch-master from a master we are not on asks instead of switching") {
    CHECK(h.feed(SwitchMaster{kS3, kB, kC}) == Actions{requery_all(RequeryCause::out_of_step)});
    CHECK(h.resolver.master() == kA);
  }
  SECTION("the old epoch's +try-failover carried inline (Redis 2.8) is used as is") {
    CHECK(h.feed(TryFailover{kS1, kA, Epoch{6}}) ==
          Actions{attempt(kS1, 6), Hold{HoldCause::try_failover}});
    CHECK(h.feed(ReplicaPromoted{kS1, kB, kA}) == Actions{Probe{kB}});
    CHECK(h.feed(RoleConfirmed{kB}) == Actions{Retarget{kB, 6, RetargetCause::promoted_replica}});
  }
}

TEST_CASE("describe: one key=value log line per action") {
  CHECK(describe(Retarget{kB, 6, RetargetCause::promoted_replica}) ==
        "event=master_switch master=10.0.0.2:6379 epoch=6 cause=promoted_replica");
  CHECK(describe(Retarget{kB, std::nullopt, RetargetCause::switch_master}) ==
        "event=master_switch master=10.0.0.2:6379 epoch=unknown cause=switch_master");
  CHECK(describe(Hold{HoldCause::odown}) == "event=hold_started cause=odown");
  CHECK(describe(ReleaseHold{ReleaseCause::hold_bound}) == "event=hold_released cause=hold_bound");
  CHECK(describe(Probe{kC}) == "event=probe candidate=10.0.0.3:6379");
  CHECK(describe(requery_all(RequeryCause::upstream_lost)) ==
        "event=requery sentinel=all cause=upstream_lost");
  CHECK(describe(Requery{kS1, RequeryCause::sentinel_connected}) ==
        "event=requery sentinel=10.0.1.1:26379 cause=sentinel_connected");
  CHECK(describe(NoMaster{"none \"here\""}) == R"(event=no_master reason="none \"here\"")");
  CHECK(describe(note(NoteKind::sentinel_lost, kS2, "unreachable: connection refused")) ==
        R"(event=sentinel_lost sentinel=10.0.1.2:26379 detail="unreachable: connection refused")");
  CHECK(describe(note(NoteKind::all_sentinels_lost)) == "event=all_sentinels_lost");
  CHECK(to_string(NoteKind::hold_bound_passed) == "hold_bound_passed");
  CHECK(to_string(Phase::switching) == "switching");
}

TEST_CASE("resolver: a Sentinel a reload dropped no longer counts") {
  Harness h;
  h.start_following();
  CHECK(h.resolver.sentinels_up() == 3);
  h.resolver.forget(kS3);
  CHECK(h.resolver.sentinels_up() == 2);
  CHECK(h.resolver.sentinel_reports().size() == 2);
  // Losing the two that are left is losing every Sentinel.
  CHECK_FALSE(h.feed(SentinelLost{kS1, LinkFailure::disconnected, "reset"}).empty());
  auto last = h.feed(SentinelLost{kS2, LinkFailure::disconnected, "reset"});
  REQUIRE_FALSE(last.empty());
  CHECK(std::holds_alternative<Note>(last.back()));
  CHECK(std::get<Note>(last.back()).kind == NoteKind::all_sentinels_lost);
}
