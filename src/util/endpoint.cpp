#include "tether/util/endpoint.hpp"

#include <charconv>

namespace tether::util {

std::string Endpoint::to_string() const {
  if (kind == Kind::unix_socket) return "unix:" + path;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::optional<Endpoint> parse_endpoint(std::string_view text, std::string* why) {
  auto fail = [why](const char* msg) -> std::optional<Endpoint> {
    if (why) *why = msg;
    return std::nullopt;
  };
  Endpoint ep;
  if (text.starts_with("unix:")) {
    ep.kind = Endpoint::Kind::unix_socket;
    ep.path = std::string(text.substr(5));
    if (ep.path.empty()) return fail("unix socket path is empty");
    // sockaddr_un::sun_path is 108 bytes including the terminating NUL.
    if (ep.path.size() > 107) return fail("unix socket path is longer than 107 bytes");
    return ep;
  }
  std::string_view host;
  std::string_view port;
  if (text.starts_with("[")) {
    auto close = text.find(']');
    if (close == std::string_view::npos) return fail("missing ']' after IPv6 address");
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') return fail("expected ':port'");
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail("expected host:port or unix:/path");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return fail("IPv6 addresses need brackets");
  }
  if (host.empty()) return fail("host is empty");
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || ptr != port.data() + port.size() || port.empty() || value == 0 ||
      value > 65535) {
    return fail("port must be a number from 1 to 65535");
  }
  ep.host = std::string(host);
  ep.port = static_cast<std::uint16_t>(value);
  return ep;
}

}  // namespace tether::util
