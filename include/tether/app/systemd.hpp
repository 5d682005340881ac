// systemd integration: listening sockets passed by socket activation, and the sd_notify
// protocol (READY, STATUS, WATCHDOG, STOPPING).
//
//   systemd ─LISTEN_FDS/LISTEN_FDNAMES─► InheritedSockets ─take(service)─► fd used
//                                                          instead of binding `listen`
//   run() ─► notify_ready / notify_service_state / notify_stopping ─► $NOTIFY_SOCKET
//   Watchdog: timer on the main thread's io_context ─probe─► every event loop;
//             WATCHDOG=1 only when every probe of the previous round has run
//
// Naming convention: a passed socket belongs to the service whose `name` equals its
// FileDescriptorName=. With a single service, one socket without a name of its own
// (systemd's default name, or none) is that service's.
//
// Without systemd (no LISTEN_FDS, NOTIFY_SOCKET or WATCHDOG_USEC in the environment) all
// of this does nothing. Threading: InheritedSockets and Watchdog belong to the main
// thread; the notify_* functions may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tether/util/asio.hpp"
#include "tether/util/endpoint.hpp"

namespace tether::app {

// Which passed socket belongs to which service. Pure, so the naming rules are testable
// without sockets.
struct SocketAssignment {
  std::vector<std::optional<std::size_t>> service_socket;  // per service: index in fd_names
  std::vector<std::size_t> unclaimed;                      // sockets no service takes
};
SocketAssignment assign_inherited_sockets(const std::vector<std::string>& fd_names,
                                          const std::vector<std::string>& services);

// A listening socket handed over by systemd, adopted by one service.
struct InheritedSocket {
  int fd = -1;           // owned by the caller once returned by take()
  std::string name;      // its FileDescriptorName=
  std::string address;   // what it is bound to, e.g. "127.0.0.1:6379" or "unix:/run/x.sock"
  bool matches = false;  // its address is the service's configured `listen`
};

class InheritedSockets {
 public:
  // Takes the sockets passed to this process (sd_listen_fds_with_names) and unsets
  // LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES. Empty when none were passed (or they were
  // meant for another process). Sets `error` when the variables are malformed.
  static InheritedSockets from_environment(std::string& error);

  InheritedSockets() = default;
  ~InheritedSockets();  // closes the sockets nobody took
  InheritedSockets(InheritedSockets&& other) noexcept;
  InheritedSockets& operator=(InheritedSockets&&) = delete;
  InheritedSockets(const InheritedSockets&) = delete;
  InheritedSockets& operator=(const InheritedSockets&) = delete;

  bool empty() const { return fds_.empty(); }

  // Assigns the sockets to `services` (names, in configuration order); false with `error`
  // naming the socket when one belongs to no service.
  bool assign(const std::vector<std::string>& services, std::string& error);

  // The socket of service `index` (after assign()): nullopt with `error` empty when none
  // was passed for it; nullopt with `error` set when the one passed is not a listening
  // stream socket of `listen`'s kind (TCP or unix).
  std::optional<InheritedSocket> take(std::size_t index, const util::Endpoint& listen,
                                      std::string& error);

 private:
  std::vector<int> fds_;
  std::vector<std::string> names_;
  SocketAssignment assignment_;
};

// STATUS= text while serving: "serving N services on W workers; <service>: <state>; ...".
// notify_ready records each service's initial state and sends READY=1 with that STATUS;
// notify_service_state replaces one service's state and sends the new STATUS (the hook for
// whatever learns something worth showing, e.g. "master 10.0.0.5:6379 epoch 7"); after
// notify_stopping, which sends STOPPING=1 and STATUS=stopping (<reason>), it does nothing.
void notify_ready(const std::vector<std::pair<std::string, std::string>>& service_states,
                  std::size_t workers);
void notify_service_state(const std::string& service, const std::string& state);
void notify_stopping(std::string_view reason);
// SIGHUP: RELOADING=1 when a reload starts, READY=1 (with the STATUS line) when it is done,
// whatever its outcome, so that `systemctl reload` waits for it.
void notify_reloading();
void notify_reloaded();

// Sends WATCHDOG=1 every WATCHDOG_USEC/2 while every probed event loop is alive: each
// round posts a probe to every executor and the next tick pings only if all of them ran.
// A stuck worker therefore stops the pings and systemd restarts the process, which one
// timer per worker (each pinging on its own) would not do.
class Watchdog {
 public:
  struct Probed {
    std::string name;  // for the log, e.g. "worker-0"
    asio::any_io_executor executor;
  };

  // Enabled when systemd asked for pings (sd_watchdog_enabled: WATCHDOG_USEC set, and
  // WATCHDOG_PID this process or unset). The timer runs on `io`.
  Watchdog(asio::io_context& io, std::vector<Probed> probed);
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  bool enabled() const { return interval_.count() > 0; }
  std::chrono::microseconds interval() const { return interval_; }

  void start();
  // Stops pinging; from `io`'s thread or once `io` no longer runs.
  void stop();

 private:
  asio::awaitable<void> loop();
  void post_probes();

  asio::io_context& io_;
  std::vector<Probed> probed_;
  std::chrono::microseconds interval_{0};
  asio::steady_timer timer_;
  std::uint64_t round_ = 0;
  // Per probed executor, the last round whose probe ran there.
  std::shared_ptr<std::vector<std::atomic<std::uint64_t>>> answered_;
  bool stopped_ = false;
};

}  // namespace tether::app
