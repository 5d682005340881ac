// Config: the YAML file turned into plain option structs.
//
//   YAML file ──► load_config() ──► Config (every field has a default)
//                              └──► errors: one line per problem, all of them at once,
//                                   each naming the key path and the file line
//
// No I/O beyond reading the file(s) named; no global state. Threading: the result is a
// value, copied to whoever needs it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tether/resp/limits.hpp"
#include "tether/util/endpoint.hpp"

namespace tether::config {

using std::chrono::milliseconds;

// pool.mode: how clients share upstream connections.
enum class PoolMode {
  shared,   // pipelined shared connections; a dedicated one only while a client's state needs it
  session,  // every client has its own upstream connection (from the warm pool) for its life
};

struct PoolOptions {
  PoolMode mode = PoolMode::shared;
  // Shared pipelined upstream connections per service per worker.
  std::size_t size = 2;
  milliseconds connect_timeout{1000};
  // Reconnect backoff: doubles from min to max after each failed attempt.
  milliseconds reconnect_min{50};
  milliseconds reconnect_max{1000};
  // Dedicated connections (a client's MULTI ... EXEC, WATCH, blocking command) per
  // service per worker and database in use, in use or being dialled; past it:
  // -DEDICATEDFULL.
  std::size_t max_dedicated = 64;
  // Dedicated connections kept ready and idle per service per worker and database in
  // use, so that a client needing one does not wait for a dial; 0: none.
  std::size_t dedicated_warm = 2;
  // Databases a client may SELECT (0 .. databases-1); each one in use gets its own pool
  // (pool.size connections per worker). Redis's default `databases` is 16.
  std::uint32_t databases = 16;
};

struct HoldOptions {
  // How long a command may wait for an upstream before it gets -NOMASTER.
  milliseconds timeout{5000};
  // Bytes of held requests per service per worker before new ones get -HOLDFULL.
  std::uint64_t max_bytes = 16ULL << 20;
};

// Sentinel mode only: how the service follows its Sentinels.
struct FailoverOptions {
  // How often each Sentinel is polled (SENTINEL MASTER) as a safety net for missed events.
  milliseconds poll_interval{1000};
  // How long a failover hold may keep commands off the old master when no promotion is
  // seen (then it is released to the old master, still the master).
  milliseconds hold_bound{10000};
};

struct ClientLimits {
  // Concurrent client connections per listener; Redis's maxclients default.
  std::size_t max_clients = 10000;
  // Requests read from one client whose replies are not yet written back; reading from
  // the client pauses at this depth (backpressure, not an error).
  std::size_t max_pending = 1024;
  // Reply bytes buffered for one client before reading from it pauses.
  std::uint64_t output_soft_limit = 1ULL << 20;
  // Reply bytes buffered for one client before the proxy closes it (counted, logged).
  std::uint64_t output_hard_limit = 1ULL << 30;
  // Redis's client-query-buffer-limit: one request larger than this is refused.
  std::uint64_t max_request_bytes = 1ULL << 30;
};

// A service runs in exactly one of two modes: static (`upstream` is the master) or Sentinel
// (`master_name` and `sentinels` set; the loader guarantees it is one or the other).
struct ServiceConfig {
  std::string name;
  util::Endpoint listen;
  // Unix socket file mode, applied after bind (e.g. 0660). Ignored for TCP.
  std::uint32_t listen_mode = 0660;
  util::Endpoint upstream;  // static mode: the master; default-constructed in Sentinel mode
  // Both modes: authentication to whichever node is the master.
  std::string upstream_username;  // ACL user; empty = "default" via AUTH <password>
  std::string upstream_password;  // from upstream_password or upstream_password_file
  // What clients must AUTH with (as Redis's requirepass; user `default`); empty: none.
  std::string client_password;  // from client_password or client_password_file

  // Sentinel mode (master_name set): the Sentinels say which node is the master.
  std::string master_name;                // Sentinel mode: the monitored master's name
  std::vector<util::Endpoint> sentinels;  // Sentinel mode: at least one (TCP, distinct)
  std::string sentinel_username;          // ACL user on the Sentinels; needs a password
  std::string sentinel_password;          // from sentinel_password or sentinel_password_file
  FailoverOptions failover;

  PoolOptions pool;
  HoldOptions hold;
  ClientLimits limits;
  resp::Limits protocol;  // proto-max-bulk-len, inline and multibulk limits
  // Commands refused with -DENIED (upper-case): those that would change the topology
  // under the Sentinels. SYNC and PSYNC are always refused.
  std::vector<std::string> deny_commands = {"SHUTDOWN", "REPLICAOF", "SLAVEOF", "FAILOVER"};

  bool uses_sentinel() const { return !master_name.empty(); }
};

struct AdminConfig {
  std::optional<util::Endpoint> listen;  // absent: no admin port
};

struct Config {
  std::string log_level = "info";  // trace, debug, info, warn, error, critical, off
  std::size_t workers = 1;         // threads, each with its own io_context and pools
  // SIGTERM/SIGINT: how long clients get to receive the replies owed to them (no new
  // request is read meanwhile) before what is left is closed. 0: close at once.
  std::chrono::milliseconds drain_timeout{5000};
  AdminConfig admin;
  std::vector<ServiceConfig> services;
};

struct ConfigError {
  std::string path;  // key path, e.g. "services[0].pool.size"
  int line = 0;      // 1-based line in the file; 0 when unknown
  std::string message;
};

struct LoadResult {
  std::optional<Config> config;     // set only when errors is empty
  std::vector<ConfigError> errors;  // every problem found, in file order
};

// Reads and validates a YAML file.
LoadResult load_config_file(const std::string& path);
// Same, from text already in memory (`origin` names it in messages).
LoadResult load_config_text(const std::string& text, const std::string& origin = "<text>");

// "FILE:LINE: services[0].pool.size: must be a positive integer" — one per error.
std::string format_error(const std::string& file, const ConfigError& e);

}  // namespace tether::config
