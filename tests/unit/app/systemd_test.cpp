#include "tether/app/systemd.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <thread>

using tether::app::assign_inherited_sockets;

namespace {
using Names = std::vector<std::string>;
using Slots = std::vector<std::optional<std::size_t>>;
}  // namespace

TEST_CASE("inherited sockets: each goes to the service it is named after") {
  auto a = assign_inherited_sockets(Names{"cache", "main"}, Names{"main", "cache", "queue"});
  CHECK(a.service_socket == Slots{1, 0, std::nullopt});
  CHECK(a.unclaimed.empty());
}

TEST_CASE("inherited sockets: none passed, every service binds its own") {
  auto a = assign_inherited_sockets(Names{}, Names{"main", "cache"});
  CHECK(a.service_socket == Slots{std::nullopt, std::nullopt});
  CHECK(a.unclaimed.empty());
}

TEST_CASE("inherited sockets: one service takes one socket without a name of its own") {
  // "unknown": no LISTEN_FDNAMES; "<unit>.socket": a socket unit without FileDescriptorName=.
  for (const char* name : {"unknown", "redis-tether.socket"}) {
    auto a = assign_inherited_sockets(Names{name}, Names{"main"});
    CHECK(a.service_socket == Slots{0});
    CHECK(a.unclaimed.empty());
  }
}

TEST_CASE("inherited sockets: an unnamed socket is ambiguous with several services") {
  auto a = assign_inherited_sockets(Names{"unknown"}, Names{"main", "cache"});
  CHECK(a.service_socket == Slots{std::nullopt, std::nullopt});
  CHECK(a.unclaimed == std::vector<std::size_t>{0});
}

TEST_CASE("inherited sockets: a name of no service, or a second one, is unclaimed") {
  auto other = assign_inherited_sockets(Names{"cache"}, Names{"main"});
  CHECK(other.service_socket == Slots{std::nullopt});
  CHECK(other.unclaimed == std::vector<std::size_t>{0});

  auto twice = assign_inherited_sockets(Names{"main", "main"}, Names{"main"});
  CHECK(twice.service_socket == Slots{0});
  CHECK(twice.unclaimed == std::vector<std::size_t>{1});

  auto extra = assign_inherited_sockets(Names{"main", "unknown"}, Names{"main"});
  CHECK(extra.service_socket == Slots{0});
  CHECK(extra.unclaimed == std::vector<std::size_t>{1});
}

namespace {

// A NOTIFY_SOCKET of the test's own, set in the environment for the Watchdog to use.
class NotifySocket {
 public:
  NotifySocket() {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    path_ = "/tmp/tether-notify-" + std::to_string(::getpid()) + ".sock";
    ::unlink(path_.c_str());
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::setenv("NOTIFY_SOCKET", path_.c_str(), 1);
    ::setenv("WATCHDOG_USEC", "40000", 1);  // a ping every 20ms
    ::unsetenv("WATCHDOG_PID");
  }
  ~NotifySocket() {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  // Notifications received so far ("WATCHDOG=1" each), without waiting.
  std::vector<std::string> drain() {
    std::vector<std::string> out;
    char buf[256];
    for (;;) {
      auto n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) return out;
      out.emplace_back(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace

TEST_CASE("watchdog: pings while every probed loop answers, stops when one does not") {
  NotifySocket notify;
  tether::asio::io_context main_io;
  tether::asio::io_context worker_io;
  auto worker_guard = tether::asio::make_work_guard(worker_io);
  std::thread worker([&] { worker_io.run(); });
  tether::asio::io_context stuck_io;  // never run: a loop that stopped answering

  SECTION("all loops answer: a ping every interval") {
    tether::app::Watchdog dog(main_io, {{"worker-0", worker_io.get_executor()}});
    REQUIRE(dog.enabled());
    CHECK(dog.interval() == std::chrono::milliseconds(20));
    dog.start();
    // Read as systemd would: a unix datagram socket queues only ~10 messages
    // (net.unix.max_dgram_qlen) before the sender blocks.
    std::vector<std::string> pings;
    for (int i = 0; i < 10; ++i) {
      main_io.run_for(std::chrono::milliseconds(50));
      for (auto& p : notify.drain())
        pings.push_back(std::move(p));
    }
    dog.stop();
    CHECK(pings.size() >= 3);  // ~25 in 500ms; slack for a loaded (or sanitized) build
    for (const auto& p : pings)
      CHECK(p == "WATCHDOG=1");
  }
  SECTION("one loop does not answer: only the start-up ping") {
    tether::app::Watchdog dog(
        main_io, {{"worker-0", worker_io.get_executor()}, {"worker-1", stuck_io.get_executor()}});
    dog.start();
    main_io.run_for(std::chrono::milliseconds(200));
    dog.stop();
    CHECK(notify.drain() == std::vector<std::string>{"WATCHDOG=1"});
  }
  worker_guard.reset();
  worker.join();
}
