// PoolSettings: what one service's upstream pool needs to know (filled by app from the
// configuration, so that upstream does not depend on config).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "tether/resp/limits.hpp"
#include "tether/util/endpoint.hpp"

namespace tether::upstream {

struct PoolSettings {
  std::string service;  // label for logs, metrics and error replies
  util::Endpoint target;
  std::string username;  // ACL user; empty: AUTH <password>
  std::string password;  // empty: no AUTH
  std::size_t size = 2;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds reconnect_min{50};
  std::chrono::milliseconds reconnect_max{1000};
  std::chrono::milliseconds hold_timeout{5000};
  std::uint64_t hold_max_bytes = 16ULL << 20;
  // Dedicated connections (MULTI ... EXEC, WATCH, blocking commands) in use or being
  // dialled at once, per worker; past it a client gets -DEDICATEDFULL.
  std::size_t max_dedicated = 64;
  // Dedicated connections kept dialled, confirmed master and idle, so that a client that
  // needs one gets it without waiting for a dial and handshake; 0: none. Not counted in
  // max_dedicated until handed over, and never more than max_dedicated (there would be
  // nobody to hand the extra ones to).
  std::size_t dedicated_warm = 2;
  // The database this pool's connections SELECT in their handshake (0: none sent).
  std::uint32_t database = 0;
  // Databases a client may SELECT (0 .. databases-1), one pool each once used; Redis's
  // own `databases` default is 16.
  std::uint32_t databases = 16;
  resp::Limits protocol;
};

}  // namespace tether::upstream
