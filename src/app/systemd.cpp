#include "tether/app/systemd.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace tether::app {
namespace {

// The name systemd gives a socket without FileDescriptorName=: the socket unit's name
// ("redis-tether.socket"); sd_listen_fds_with_names says "unknown" when LISTEN_FDNAMES is
// absent (e.g. systemd-socket-activate without --fdname).
bool is_default_name(const std::string& name) {
  return name == "unknown" || name.ends_with(".socket");
}

std::string describe_address(const sockaddr_storage& addr, socklen_t len) {
  char host[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(addr);
    ::inet_ntop(AF_INET, &in.sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(in.sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(addr);
    ::inet_ntop(AF_INET6, &in6.sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6.sin6_port));
  }
  if (addr.ss_family == AF_UNIX) {
    const auto& un = reinterpret_cast<const sockaddr_un&>(addr);
    auto path_len =
        len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    std::string path(un.sun_path, path_len);
    if (!path.empty() && path[0] == '\0') path[0] = '@';  // abstract namespace
    if (auto nul = path.find('\0'); nul != std::string::npos) path.resize(nul);
    return "unix:" + path;
  }
  return "family " + std::to_string(addr.ss_family);
}

// Whether the socket is bound where the configuration says. A host name (not an address
// literal) in `listen` cannot be compared without resolving it: only the port counts.
bool same_address(const util::Endpoint& listen, const sockaddr_storage& addr) {
  if (listen.kind == util::Endpoint::Kind::unix_socket) {
    if (addr.ss_family != AF_UNIX) return false;
    const auto& un = reinterpret_cast<const sockaddr_un&>(addr);
    return listen.path == std::string(un.sun_path, ::strnlen(un.sun_path, sizeof un.sun_path));
  }
  if (addr.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(addr);
    in_addr want{};
    if (ntohs(in.sin_port) != listen.port) return false;
    return ::inet_pton(AF_INET, listen.host.c_str(), &want) != 1 ||
           want.s_addr == in.sin_addr.s_addr;
  }
  if (addr.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(addr);
    in6_addr want{};
    if (ntohs(in6.sin6_port) != listen.port) return false;
    in_addr v4{};
    if (::inet_pton(AF_INET, listen.host.c_str(), &v4) == 1) return false;
    return ::inet_pton(AF_INET6, listen.host.c_str(), &want) != 1 ||
           std::memcmp(&want, &in6.sin6_addr, sizeof want) == 0;
  }
  return false;
}

void send_notification(const std::string& message) {
  if (int rc = ::sd_notify(0, message.c_str()); rc < 0) {
    spdlog::debug("event=notify_failed error=\"{}\"", std::strerror(-rc));
  }
}

// The STATUS= line's parts. Process-wide because the notification socket is: there is
// one service manager per process.
struct NotifyStatus {
  std::mutex mutex;
  std::string head;
  std::vector<std::pair<std::string, std::string>> services;
  bool stopping = false;

  std::string line() const {
    std::string out = head;
    for (const auto& [name, state] : services) {
      out += (out.empty() ? "" : "; ") + name + ": " + state;
    }
    for (char& c : out) {
      if (c == '\n' || c == '\r') c = ' ';  // one notification field per line
    }
    return out;
  }
};

NotifyStatus& status_lines() {
  static NotifyStatus status;
  return status;
}

}  // namespace

SocketAssignment assign_inherited_sockets(const std::vector<std::string>& fd_names,
                                          const std::vector<std::string>& services) {
  SocketAssignment a;
  a.service_socket.resize(services.size());
  std::vector<bool> taken(fd_names.size(), false);
  for (std::size_t s = 0; s < services.size(); ++s) {
    for (std::size_t f = 0; f < fd_names.size(); ++f) {
      if (!taken[f] && fd_names[f] == services[s]) {
        a.service_socket[s] = f;
        taken[f] = true;
        break;
      }
    }
  }
  if (services.size() == 1 && fd_names.size() == 1 && !taken[0] && is_default_name(fd_names[0])) {
    a.service_socket[0] = 0;
    taken[0] = true;
  }
  for (std::size_t f = 0; f < fd_names.size(); ++f) {
    if (!taken[f]) a.unclaimed.push_back(f);
  }
  return a;
}

InheritedSockets InheritedSockets::from_environment(std::string& error) {
  InheritedSockets out;
  char** names = nullptr;
  int n = ::sd_listen_fds_with_names(1, &names);
  if (n < 0) {
    error = std::string("sockets passed by systemd (LISTEN_FDS): ") + std::strerror(-n);
    return out;
  }
  for (int i = 0; i < n; ++i) {
    out.fds_.push_back(SD_LISTEN_FDS_START + i);
    out.names_.emplace_back(names != nullptr && names[i] != nullptr ? names[i] : "unknown");
  }
  if (names != nullptr) {
    for (int i = 0; i < n; ++i)
      std::free(names[i]);
    std::free(names);
  }
  return out;
}

InheritedSockets::InheritedSockets(InheritedSockets&& other) noexcept
    : fds_(std::move(other.fds_)),
      names_(std::move(other.names_)),
      assignment_(std::move(other.assignment_)) {
  other.fds_.clear();
}

InheritedSockets::~InheritedSockets() {
  for (int fd : fds_) {
    if (fd >= 0) ::close(fd);
  }
}

bool InheritedSockets::assign(const std::vector<std::string>& services, std::string& error) {
  assignment_ = assign_inherited_sockets(names_, services);
  if (assignment_.unclaimed.empty()) return true;
  std::string list;
  for (auto f : assignment_.unclaimed) {
    list += (list.empty() ? "'" : ", '") + names_[f] + "'";
  }
  error = "socket(s) passed by systemd named " + list +
          " match no service; FileDescriptorName= must be a service name";
  return false;
}

std::optional<InheritedSocket> InheritedSockets::take(std::size_t index,
                                                      const util::Endpoint& listen,
                                                      std::string& error) {
  error.clear();
  if (index >= assignment_.service_socket.size() || !assignment_.service_socket[index]) {
    return std::nullopt;
  }
  auto f = *assignment_.service_socket[index];
  InheritedSocket s;
  s.fd = fds_[f];
  s.name = names_[f];
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(s.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    error = "socket '" + s.name + "' passed by systemd: getsockname: " + std::strerror(errno);
    return std::nullopt;
  }
  s.address = describe_address(addr, len);
  const bool want_unix = listen.kind == util::Endpoint::Kind::unix_socket;
  const bool family_ok = want_unix ? addr.ss_family == AF_UNIX
                                   : (addr.ss_family == AF_INET || addr.ss_family == AF_INET6);
  if (::sd_is_socket(s.fd, addr.ss_family, SOCK_STREAM, 1) <= 0 || !family_ok) {
    error = "socket '" + s.name + "' passed by systemd (" + s.address + ") is not a listening " +
            (want_unix ? "unix" : "TCP") + " stream socket like listen " + listen.to_string();
    return std::nullopt;
  }
  s.matches = same_address(listen, addr);
  fds_[f] = -1;  // the caller owns it now
  return s;
}

void notify_ready(const std::vector<std::pair<std::string, std::string>>& service_states,
                  std::size_t workers) {
  auto& status = status_lines();
  std::lock_guard lock(status.mutex);
  auto n = service_states.size();
  status.head = "serving " + std::to_string(n) + (n == 1 ? " service" : " services") + " on " +
                std::to_string(workers) + (workers == 1 ? " worker" : " workers");
  status.services = service_states;
  send_notification("READY=1\nSTATUS=" + status.line());
}

void notify_service_state(const std::string& service, const std::string& state) {
  auto& status = status_lines();
  std::lock_guard lock(status.mutex);
  if (status.stopping) return;
  bool found = false;
  for (auto& [name, current] : status.services) {
    if (name == service) {
      current = state;
      found = true;
    }
  }
  if (!found) status.services.emplace_back(service, state);
  send_notification("STATUS=" + status.line());
}

void notify_reloading() {
  auto& status = status_lines();
  std::lock_guard lock(status.mutex);
  if (status.stopping) return;
  send_notification("RELOADING=1\nSTATUS=reloading the configuration");
}

void notify_reloaded() {
  auto& status = status_lines();
  std::lock_guard lock(status.mutex);
  if (status.stopping) return;
  send_notification("READY=1\nSTATUS=" + status.line());
}

void notify_stopping(std::string_view reason) {
  auto& status = status_lines();
  std::lock_guard lock(status.mutex);
  status.stopping = true;
  send_notification("STOPPING=1\nSTATUS=stopping (" + std::string(reason) + ")");
}

Watchdog::Watchdog(asio::io_context& io, std::vector<Probed> probed)
    : io_(io),
      probed_(std::move(probed)),
      timer_(io),
      answered_(std::make_shared<std::vector<std::atomic<std::uint64_t>>>(probed_.size())) {
  std::uint64_t usec = 0;
  if (::sd_watchdog_enabled(0, &usec) > 0) interval_ = std::chrono::microseconds(usec / 2);
}

void Watchdog::start() {
  if (!enabled()) return;
  spdlog::info("event=watchdog_enabled interval_ms={} probed={}",
               std::chrono::duration_cast<std::chrono::milliseconds>(interval_).count(),
               probed_.size());
  asio::co_spawn(io_, loop(), asio::detached);
}

void Watchdog::stop() {
  stopped_ = true;
  timer_.cancel();
}

void Watchdog::post_probes() {
  ++round_;
  for (std::size_t i = 0; i < probed_.size(); ++i) {
    asio::post(probed_[i].executor, [answered = answered_, i, round = round_] {
      (*answered)[i].store(round, std::memory_order_release);
    });
  }
}

asio::awaitable<void> Watchdog::loop() {
  // Everything was just started: the first ping needs no probe.
  send_notification("WATCHDOG=1");
  post_probes();
  while (!stopped_) {
    timer_.expires_after(interval_);
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec || stopped_) co_return;
    bool all = true;
    for (std::size_t i = 0; i < probed_.size(); ++i) {
      if ((*answered_)[i].load(std::memory_order_acquire) < round_) {
        all = false;
        spdlog::warn("event=watchdog_probe_late loop={} waited_ms={}", probed_[i].name,
                     std::chrono::duration_cast<std::chrono::milliseconds>(interval_).count());
      }
    }
    if (all) send_notification("WATCHDOG=1");
    post_probes();
  }
}

}  // namespace tether::app
