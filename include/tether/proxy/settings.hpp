// ListenerSettings: what the client side of one service needs (filled by app from the
// configuration, so that proxy does not depend on config).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tether/resp/limits.hpp"

namespace tether::proxy {

struct ListenerSettings {
  std::string service;
  std::size_t max_clients = 10000;
  std::size_t max_pending = 1024;
  std::uint64_t output_soft_limit = 1ULL << 20;
  std::uint64_t output_hard_limit = 1ULL << 30;
  std::uint64_t max_request_bytes = 1ULL << 30;
  resp::Limits protocol;
  // Refused with -DENIED, upper-case (services[].deny_commands; same default).
  std::vector<std::string> deny_commands = {"SHUTDOWN", "REPLICAOF", "SLAVEOF", "FAILOVER"};
  // services[].client_password: clients must AUTH with it first (empty: no password).
  // Read at each AUTH, so a reload applies to the next one.
  std::string client_password;
  // pool.mode: session: every client holds a dedicated upstream connection for its whole
  // life (see ClientSession). Read when a client connects: a reload applies to new ones.
  bool session_mode = false;
};

}  // namespace tether::proxy
