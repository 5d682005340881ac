// Shared fixture for the resolver tests: a resolver with three Sentinels, a clock the test
// moves by hand, and helpers that bring it to "following a master".
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "tether/sentinel/actions.hpp"
#include "tether/sentinel/resolver.hpp"

namespace Catch {
// Failures print each action as the log line the watcher would write.
template <>
struct StringMaker<tether::sentinel::Action> {
  static std::string convert(const tether::sentinel::Action& a) {
    return tether::sentinel::describe(a);
  }
};
}  // namespace Catch

namespace tether::sentinel::test {

using namespace std::chrono_literals;
using Actions = std::vector<Action>;

inline util::Endpoint node(const char* host, std::uint16_t port = 6379) {
  util::Endpoint ep;
  ep.host = host;
  ep.port = port;
  return ep;
}

// Masters and replicas: A is the master at start; B and C are replicas.
inline const util::Endpoint kA = node("10.0.0.1");
inline const util::Endpoint kB = node("10.0.0.2");
inline const util::Endpoint kC = node("10.0.0.3");
inline const SentinelId kS1 = "10.0.1.1:26379";
inline const SentinelId kS2 = "10.0.1.2:26379";
inline const SentinelId kS3 = "10.0.1.3:26379";
inline const SentinelId kAllSentinels[] = {kS1, kS2, kS3};
constexpr Epoch kStartEpoch = 5;
constexpr auto kHoldBound = 10s;
constexpr auto kSettle = 500ms;

inline ResolverSettings test_settings() {
  ResolverSettings s;
  s.master_name = "mymaster";
  s.sentinels = {kS1, kS2, kS3};
  s.hold_bound = kHoldBound;
  s.startup_settle = kSettle;
  return s;
}

inline Note note(NoteKind kind, SentinelId sentinel = {}, std::string detail = {}) {
  return Note{kind, std::move(sentinel), std::move(detail)};
}
inline Requery requery_all(RequeryCause cause) {
  return Requery{std::nullopt, cause};
}
inline Note down_report(const SentinelId& s, const char* what) {
  return note(NoteKind::master_down_report, s, what);
}
inline Note attempt(const SentinelId& s, Epoch e) {
  return note(NoteKind::failover_attempt, s, "epoch " + std::to_string(e));
}

struct Harness {
  Resolver::TimePoint start = Resolver::TimePoint{} + 1h;
  Resolver::TimePoint now = start;
  Resolver resolver;

  explicit Harness(ResolverSettings settings = test_settings())
      : resolver(std::move(settings), now) {}

  Actions feed(const Event& e) { return resolver.handle(e, now); }
  Actions advance(std::chrono::milliseconds d) {
    now += d;
    return resolver.handle(Tick{}, now);
  }
  void connect_all() {
    for (const SentinelId& s : kAllSentinels) {
      REQUIRE(feed(SentinelConnected{s}) == Actions{note(NoteKind::sentinel_up, s),
                                                    Requery{s, RequeryCause::sentinel_connected}});
    }
  }
  // All three Sentinels up and agreeing that `master` is the master at `epoch`.
  void start_following(const util::Endpoint& master = kA, Epoch epoch = kStartEpoch) {
    connect_all();
    REQUIRE(feed(PollAnswer{kS1, master, epoch}).empty());
    REQUIRE(feed(PollAnswer{kS2, master, epoch}).empty());
    REQUIRE(feed(PollAnswer{kS3, master, epoch}) ==
            Actions{Retarget{master, epoch, RetargetCause::startup}});
    REQUIRE(resolver.phase() == Phase::following);
  }
  // Sentinel `s` starts a failover of the current master at `epoch`, as Redis publishes
  // it: +new-epoch, then +try-failover.
  Actions try_failover(const SentinelId& s, Epoch epoch, const util::Endpoint& master = kA) {
    REQUIRE(feed(NewEpoch{s, epoch}).empty());
    return feed(TryFailover{s, master, std::nullopt});
  }
};

}  // namespace tether::sentinel::test
