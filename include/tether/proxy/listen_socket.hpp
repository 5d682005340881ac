// Opening listening sockets, once per service at start-up; every worker then accepts on
// its own dup() of the descriptor, so TCP, unix sockets and (later) sockets handed over
// by systemd all work the same way.
#pragma once

#include <cstdint>
#include <string>

#include "tether/util/endpoint.hpp"

namespace tether::proxy {

// Binds and listens; returns the descriptor, or -1 with `error` set. A unix socket path
// left behind by a previous run is replaced; `unix_mode` is applied to a new socket file.
int open_listen_socket(const util::Endpoint& ep, std::uint32_t unix_mode, std::string& error);

}  // namespace tether::proxy
