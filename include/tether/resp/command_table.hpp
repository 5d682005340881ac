// CommandTable: what the router does with each command name, found without allocating.
//
// Threading: immutable after construction; safe to share.
#pragma once

#include <cstdint>
#include <string_view>

#include "tether/resp/request_scanner.hpp"

namespace tether::resp {

enum class CommandClass : std::uint8_t {
  shared,    // stateless: any shared pipelined upstream connection may carry it
  pinned,    // needs the client's own upstream connection while its state lives:
             // MULTI ... EXEC, WATCH, blocking commands (the proxy provides it)
  stateful,  // leaves state on the connection that the proxy cannot carry yet
             // (MONITOR, CLIENT, ...): refused
  pubsub,    // the SUBSCRIBE family: the client's own upstream connection, in relay mode,
             // while it has a subscription (PUBLISH, SPUBLISH, PUBSUB are shared)
  inspect,   // resolved by the arguments: XREAD ... BLOCK (pinned), SCRIPT DEBUG (stateful)
  local,     // answered by the proxy itself (QUIT, RESET, AUTH, HELLO's options, ...)
  denied,    // would break the topology (SHUTDOWN, REPLICAOF, FAILOVER, SYNC, ...)
};

// Classifies a command name, case-insensitively. Unknown names are `shared`: the
// upstream answers "unknown command" in its own words.
CommandClass classify_command(std::string_view name);

// Classifies one complete request (as RequestScanner reported it): like
// classify_command, with `inspect` resolved by looking at the arguments, so the result is
// never `inspect`. XREAD/XREADGROUP are pinned only with a BLOCK option (before
// STREAMS), SCRIPT is stateful only as SCRIPT DEBUG.
CommandClass classify_request(std::string_view request_bytes, const Request& request);

// Upper-cases `name` into `out` (at most out_len bytes); returns the length written, or
// 0 if the name is longer than out_len. For error replies that name the command.
std::size_t upper_name(std::string_view name, char* out, std::size_t out_len);

// Whether argument `arg` is `upper_word` (given in upper case), in any case.
bool is_word(std::string_view arg, std::string_view upper_word);

}  // namespace tether::resp
