#include "tether/upstream/pool.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>

#include "pool_fixture.hpp"
#include "redis_direct.hpp"
#include "redis_process.hpp"
#include "tether/resp/value.hpp"

using namespace std::chrono_literals;
using tether::testing::Collector;
using tether::testing::direct;
using tether::testing::RedisProcess;
using tether::upstream::Pool;
using tether::upstream::PoolSettings;
using Fixture = tether::testing::PoolFixture;

TEST_CASE("pool forwards commands and delivers each reply to its slot") {
  RedisProcess redis;
  Fixture f;
  Pool pool(f.io.get_executor(), f.settings(redis.port()), f.metrics.service(0));
  pool.start();
  auto a = f.send(pool, {"SET", "k", "v"});
  auto b = f.send(pool, {"GET", "k"});
  auto c = f.send(pool, {"INCR", "n"});
  auto d = f.send(pool, {"INCR", "n"});
  CHECK(f.reply(a) == "+OK\r\n");
  CHECK(f.reply(b) == "$1\r\nv\r\n");
  CHECK(f.reply(c) == ":1\r\n");
  CHECK(f.reply(d) == ":2\r\n");
  CHECK(pool.held_commands() == 0);
  f.finish(pool);
}

TEST_CASE("retarget: new commands go to the new master, owed replies still arrive") {
  RedisProcess old_master;
  RedisProcess new_master;
  Fixture f;
  Pool pool(f.io.get_executor(), f.settings(old_master.port()), f.metrics.service(0));
  pool.start();
  CHECK(f.reply(f.send(pool, {"SET", "k", "old"})) == "+OK\r\n");
  // In flight on the old generation while the target changes.
  auto slow = f.send(pool, {"DEBUG", "SLEEP", "0.3"});
  f.run_until([] { return false; }, 50ms);
  pool.retarget(*tether::util::parse_endpoint("127.0.0.1:" + std::to_string(new_master.port())));
  CHECK(pool.generation() == 2);
  auto fresh = f.send(pool, {"SET", "k", "new"});
  CHECK(f.reply(fresh) == "+OK\r\n");
  CHECK(f.reply(slow) == "+OK\r\n");
  CHECK(direct(old_master.port(), "GET k") == "old");
  CHECK(direct(new_master.port(), "GET k") == "new");
  // The old generation drains and closes: only the new pool's connections remain.
  CHECK(f.run_until([&] {
    return f.metrics.service(0).upstream[2]->Value() == 0 &&
           f.metrics.service(0).upstream[1]->Value() == 2;
  }));
  f.finish(pool);
}

TEST_CASE("commands are held while no upstream is reachable and delivered once it is") {
  auto port = tether::testing::free_port();
  Fixture f;
  Pool pool(f.io.get_executor(), f.settings(port), f.metrics.service(0));
  pool.start();
  auto a = f.send(pool, {"INCR", "held"});
  auto b = f.send(pool, {"INCR", "held"});
  f.run_until([] { return false; }, 200ms);
  CHECK(f.sink->replies.empty());
  CHECK(pool.held_commands() == 2);
  RedisProcess redis(port);
  CHECK(f.reply(a) == ":1\r\n");
  CHECK(f.reply(b) == ":2\r\n");
  CHECK(pool.held_commands() == 0);
  f.finish(pool);
}

TEST_CASE("held past hold.timeout: NOMASTER with the reason, counted") {
  auto port = tether::testing::free_port();
  Fixture f;
  auto s = f.settings(port);
  s.hold_timeout = 150ms;
  Pool pool(f.io.get_executor(), s, f.metrics.service(0));
  pool.start();
  auto a = f.send(pool, {"GET", "x"});
  auto r = f.reply(a);
  CHECK(r.starts_with("-NOMASTER no upstream for service 'test' within 150ms: "));
  CHECK(r.find("Connection refused") != std::string::npos);
  CHECK(f.metrics.service(0).hold_expired->Value() == 1);
  CHECK(pool.held_commands() == 0);
  f.finish(pool);
}

TEST_CASE("held bytes past hold.max_bytes: HOLDFULL for the command that does not fit") {
  auto port = tether::testing::free_port();
  Fixture f;
  auto s = f.settings(port);
  s.hold_max_bytes = 64;
  Pool pool(f.io.get_executor(), s, f.metrics.service(0));
  pool.start();
  auto a = f.send(pool, {"SET", "k", std::string(20, 'x')});  // 41 bytes: fits
  auto b = f.send(pool, {"SET", "k", std::string(20, 'y')});  // 82 in all: refused
  CHECK(f.reply(b).starts_with("-HOLDFULL requests held for service 'test' exceed 64B"));
  CHECK(f.sink->replies.count(a) == 0);
  CHECK(pool.held_commands() == 1);
  f.finish(pool);
}

TEST_CASE("a command in flight when the upstream dies gets OUTCOMEUNKNOWN") {
  RedisProcess redis;
  Fixture f;
  Pool pool(f.io.get_executor(), f.settings(redis.port()), f.metrics.service(0));
  pool.start();
  CHECK(f.reply(f.send(pool, {"PING"})) == "+PONG\r\n");
  auto slow = f.send(pool, {"DEBUG", "SLEEP", "5"});
  f.run_until([] { return false; }, 100ms);
  redis.kill();
  auto r = f.reply(slow);
  CHECK(r.starts_with("-OUTCOMEUNKNOWN upstream 127.0.0.1:"));
  f.finish(pool);
}

TEST_CASE("only a master takes work: a replica is refused at the handshake") {
  RedisProcess master;
  RedisProcess replica(tether::testing::free_port(),
                       {"--replicaof", "127.0.0.1", std::to_string(master.port())});
  Fixture f;
  auto s = f.settings(replica.port());
  s.hold_timeout = 300ms;
  Pool pool(f.io.get_executor(), s, f.metrics.service(0));
  pool.start();
  auto r = f.reply(f.send(pool, {"SET", "k", "v"}));
  CHECK(r.find("is not a master (ROLE says slave)") != std::string::npos);
  CHECK(direct(replica.port(), "DBSIZE") == "0");
  f.finish(pool);
}

TEST_CASE("upstream authentication: password, ACL user, and a wrong password") {
  RedisProcess redis(tether::testing::free_port(), {"--requirepass", "s3cret"});
  {
    redisContext* c = redisConnect("127.0.0.1", redis.port());
    freeReplyObject(redisCommand(c, "AUTH s3cret"));
    freeReplyObject(redisCommand(c, "ACL SETUSER app on >apppw ~* &* +@all"));
    redisFree(c);
  }
  SECTION("default user") {
    Fixture f;
    auto s = f.settings(redis.port());
    s.password = "s3cret";
    Pool pool(f.io.get_executor(), s, f.metrics.service(0));
    pool.start();
    CHECK(f.reply(f.send(pool, {"PING"})) == "+PONG\r\n");
    f.finish(pool);
  }
  SECTION("ACL user") {
    Fixture f;
    auto s = f.settings(redis.port());
    s.username = "app";
    s.password = "apppw";
    Pool pool(f.io.get_executor(), s, f.metrics.service(0));
    pool.start();
    CHECK(f.reply(f.send(pool, {"PING"})) == "+PONG\r\n");
    f.finish(pool);
  }
  SECTION("wrong password: held, then NOMASTER naming the AUTH failure") {
    Fixture f;
    auto s = f.settings(redis.port());
    s.password = "wrong";
    s.hold_timeout = 300ms;
    Pool pool(f.io.get_executor(), s, f.metrics.service(0));
    pool.start();
    auto r = f.reply(f.send(pool, {"PING"}));
    CHECK(r.starts_with("-NOMASTER"));
    CHECK(r.find("AUTH at 127.0.0.1:") != std::string::npos);
    CHECK(r.find("WRONGPASS") != std::string::npos);
    f.finish(pool);
  }
}

TEST_CASE("pause holds new commands off the current master, retarget sends them elsewhere") {
  RedisProcess old_master;
  RedisProcess new_master;
  Fixture f;
  auto s = f.settings(old_master.port());
  Pool pool(f.io.get_executor(), s, f.metrics.service(0));
  pool.start();
  CHECK(f.reply(f.send(pool, {"SET", "before", "1"})) == "+OK\r\n");
  pool.pause("failover of mymaster has begun");
  CHECK(pool.paused());
  auto during = f.send(pool, {"SET", "during", "1"});
  f.run_until([] { return false; }, 200ms);
  CHECK(f.sink->replies.count(during) == 0);
  CHECK(pool.held_commands() == 1);
  CHECK(direct(old_master.port(), "EXISTS during") == "0");
  pool.retarget(*tether::util::parse_endpoint("127.0.0.1:" + std::to_string(new_master.port())));
  CHECK(f.reply(during) == "+OK\r\n");
  CHECK(direct(new_master.port(), "EXISTS during") == "1");
  CHECK(direct(old_master.port(), "EXISTS during") == "0");
  f.finish(pool);
}

TEST_CASE("resume after a pause releases held commands to the same master, in order") {
  RedisProcess redis;
  Fixture f;
  Pool pool(f.io.get_executor(), f.settings(redis.port()), f.metrics.service(0));
  pool.start();
  CHECK(f.reply(f.send(pool, {"PING"})) == "+PONG\r\n");
  pool.pause("failover attempt");
  auto a = f.send(pool, {"RPUSH", "l", "a"});
  auto b = f.send(pool, {"RPUSH", "l", "b"});
  f.run_until([] { return false; }, 100ms);
  CHECK(f.sink->replies.size() == 1);  // only the PING
  CHECK(direct(redis.port(), "LLEN l") == "0");
  pool.resume();
  CHECK(f.reply(a) == ":1\r\n");
  CHECK(f.reply(b) == ":2\r\n");
  f.finish(pool);
}

TEST_CASE("a pause past hold.timeout answers NOMASTER with the pause's reason") {
  RedisProcess redis;
  Fixture f;
  auto s = f.settings(redis.port());
  s.hold_timeout = 150ms;
  Pool pool(f.io.get_executor(), s, f.metrics.service(0));
  pool.start();
  CHECK(f.reply(f.send(pool, {"PING"})) == "+PONG\r\n");
  pool.pause("failover of mymaster has begun");
  auto r = f.reply(f.send(pool, {"GET", "x"}));
  CHECK(r ==
        "-NOMASTER no upstream for service 'test' within 150ms: failover of mymaster has "
        "begun\r\n");
  f.finish(pool);
}

TEST_CASE("retarget(abandon): in-flight commands on the old master get OUTCOMEUNKNOWN") {
  RedisProcess old_master;
  RedisProcess new_master;
  Fixture f;
  Pool pool(f.io.get_executor(), f.settings(old_master.port()), f.metrics.service(0));
  pool.start();
  CHECK(f.reply(f.send(pool, {"PING"})) == "+PONG\r\n");
  auto slow = f.send(pool, {"DEBUG", "SLEEP", "0.3"});
  f.run_until([] { return false; }, 50ms);
  pool.retarget(*tether::util::parse_endpoint("127.0.0.1:" + std::to_string(new_master.port())),
                Pool::RetargetMode::abandon);
  CHECK(f.reply(slow).starts_with("-OUTCOMEUNKNOWN upstream 127.0.0.1:"));
  CHECK(f.reply(f.send(pool, {"SET", "k", "new"})) == "+OK\r\n");
  CHECK(direct(new_master.port(), "GET k") == "new");
  f.finish(pool);
}

TEST_CASE(
    "a master turned replica: refused commands run once on the next master, never -READONLY") {
  RedisProcess old_master;
  RedisProcess new_master;
  Fixture f;
  auto s = f.settings(old_master.port());
  s.size = 1;  // one connection: the whole pipeline below shares it
  Pool pool(f.io.get_executor(), s, f.metrics.service(0));
  int refused = 0;
  pool.set_feedback({[&](const tether::util::Endpoint&) { ++refused; }, nullptr});
  pool.start();
  CHECK(f.reply(f.send(pool, {"SET", "k", "10"})) == "+OK\r\n");
  // The node is demoted under the pool (as Sentinel does to a returning old master). A
  // pipeline after it: INCRs refused with -READONLY, the GET executed by the replica; the
  // GET comes after a refusal, so it runs again on the next master too.
  direct(old_master.port(), ("REPLICAOF 127.0.0.1 " + std::to_string(new_master.port())).c_str());
  std::vector<std::uint64_t> incrs;
  for (int i = 0; i < 5; ++i)
    incrs.push_back(f.send(pool, {"INCR", "k"}));
  auto get = f.send(pool, {"GET", "k"});
  f.run_until([&] { return refused > 0 && pool.held_commands() == 6; });
  CHECK(refused == 1);
  CHECK(f.sink->replies.size() == 1);  // only SET's: no -READONLY, no replica's GET
  CHECK(pool.held_commands() == 6);
  // Reconnecting to the demoted node fails at ROLE; the commands stay held until the
  // pool has a master again.
  f.run_until([] { return false; }, 200ms);
  CHECK(f.sink->replies.size() == 1);
  CHECK(direct(new_master.port(), "SET k 100") == "OK");
  pool.retarget(*tether::util::parse_endpoint("127.0.0.1:" + std::to_string(new_master.port())));
  for (int i = 0; i < 5; ++i)
    CHECK(f.reply(incrs[static_cast<std::size_t>(i)]) == ":" + std::to_string(101 + i) + "\r\n");
  CHECK(f.reply(get) == "$3\r\n105\r\n");
  CHECK(direct(new_master.port(), "GET k") == "105");  // each INCR ran exactly once
  f.finish(pool);
}

TEST_CASE("commands of many clients dispatched together share one upstream connection") {
  RedisProcess redis;
  Fixture f;
  Pool pool(f.io.get_executor(), f.settings(redis.port()), f.metrics.service(0));
  pool.start();
  REQUIRE(f.run_until([&] { return pool.accepting_connections() == 2; }));
  // As when one event-loop turn reads requests from several clients: they join the batch
  // the first one started, so Redis reads them all from one connection in one write.
  std::vector<std::shared_ptr<Collector>> clients;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(std::make_shared<Collector>());
    pool.dispatch(clients.back(), 0, tether::resp::encode_command({"CLIENT", "ID"}));
  }
  REQUIRE(f.run_until([&] {
    return std::all_of(clients.begin(), clients.end(),
                       [](const auto& c) { return c->replies.count(0) > 0; });
  }));
  for (const auto& c : clients)
    CHECK(c->replies[0] == clients[0]->replies[0]);
  f.finish(pool);
}

TEST_CASE("a new batch starts on the connection owing the fewest replies") {
  RedisProcess redis;
  Fixture f;
  Pool pool(f.io.get_executor(), f.settings(redis.port()), f.metrics.service(0));
  pool.start();
  REQUIRE(f.run_until([&] { return pool.accepting_connections() == 2; }));
  auto busy = std::make_shared<Collector>();
  pool.dispatch(busy, 0, tether::resp::encode_command({"CLIENT", "ID"}));
  pool.dispatch(busy, 1, tether::resp::encode_command({"DEBUG", "SLEEP", "0.3"}));
  // Once that batch is written (and its replies are owed), another client's command
  // goes to the other, idle connection instead of queueing behind the sleep.
  f.run_until([] { return false; }, 50ms);
  REQUIRE(busy->replies.empty());
  auto other = std::make_shared<Collector>();
  pool.dispatch(other, 0, tether::resp::encode_command({"CLIENT", "ID"}));
  REQUIRE(f.run_until([&] { return busy->replies.size() == 2 && !other->replies.empty(); }));
  CHECK(other->replies[0] != busy->replies[0]);
  f.finish(pool);
}

TEST_CASE("reconfigure: a larger pool dials more, a smaller one drains the extra") {
  RedisProcess redis;
  Fixture f;
  Pool pool(f.io.get_executor(), f.settings(redis.port()), f.metrics.service(0));
  pool.start();
  auto ready = [&] { return f.metrics.service(0).upstream[1]->Value(); };
  CHECK(f.run_until([&] { return ready() == 2; }));
  auto s = f.settings(redis.port());
  s.size = 5;
  s.hold_timeout = 50ms;
  pool.reconfigure(s);
  CHECK(f.run_until([&] { return ready() == 5; }));
  CHECK(f.reply(f.send(pool, {"INCR", "n"})) == ":1\r\n");
  s.size = 1;
  pool.reconfigure(s);
  CHECK(f.run_until([&] { return ready() == 1 && pool.accepting_connections() == 1; }));
  // Shrinking and growing again before the old loops noticed: no slot gets two loops.
  s.size = 3;
  pool.reconfigure(s);
  s.size = 2;
  pool.reconfigure(s);
  s.size = 3;
  pool.reconfigure(s);
  CHECK(f.run_until([&] { return ready() == 3; }));
  f.run_until([] { return false; }, 200ms);
  CHECK(ready() == 3);
  CHECK(f.reply(f.send(pool, {"INCR", "n"})) == ":2\r\n");
  f.finish(pool);
}
