// Endpoint: where to listen or dial, as written in the configuration.
//
//   "127.0.0.1:6379"   TCP, IPv4 literal
//   "[::1]:6379"       TCP, IPv6 literal
//   "localhost:6379"   TCP, host name (resolved when dialled)
//   "unix:/run/x.sock" Unix-domain stream socket
//
// A value type; parsing is pure and allocation happens only for the strings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tether::util {

struct Endpoint {
  enum class Kind { tcp, unix_socket };
  Kind kind = Kind::tcp;
  std::string host;  // tcp: host name or address literal (no brackets)
  std::uint16_t port = 0;
  std::string path;  // unix_socket: filesystem path

  // "host:port" or "unix:/path"; IPv6 hosts are bracketed.
  std::string to_string() const;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// Parses an endpoint; returns nullopt and sets `why` (if given) on failure.
std::optional<Endpoint> parse_endpoint(std::string_view text, std::string* why = nullptr);

}  // namespace tether::util
