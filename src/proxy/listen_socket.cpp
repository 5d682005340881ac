#include "tether/proxy/listen_socket.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tether::proxy {
namespace {

// Same as Redis's default tcp-backlog.
constexpr int kBacklog = 511;

std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

int open_unix(const util::Endpoint& ep, std::uint32_t mode, std::string& error) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = errno_text("socket");
    return -1;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, ep.path.c_str(), ep.path.size() + 1);
  struct stat st {};
  if (::lstat(ep.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(ep.path.c_str());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    error = errno_text(("bind " + ep.path).c_str());
    ::close(fd);
    return -1;
  }
  if (::chmod(ep.path.c_str(), mode) != 0 || ::listen(fd, kBacklog) != 0) {
    error = errno_text(("listen " + ep.path).c_str());
    ::close(fd);
    return -1;
  }
  return fd;
}

int open_tcp(const util::Endpoint& ep, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  auto port = std::to_string(ep.port);
  if (int rc = ::getaddrinfo(ep.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    error = "resolve " + ep.host + ": " + ::gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (auto* ai = res; ai != nullptr; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      error = errno_text("socket");
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, kBacklog) == 0) break;
    error = errno_text(("bind " + ep.to_string()).c_str());
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  return fd;
}

}  // namespace

int open_listen_socket(const util::Endpoint& ep, std::uint32_t unix_mode, std::string& error) {
  if (ep.kind == util::Endpoint::Kind::unix_socket) return open_unix(ep, unix_mode, error);
  return open_tcp(ep, error);
}

}  // namespace tether::proxy
