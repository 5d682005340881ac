// CommandTable: a sorted constexpr table searched with the upper-cased name held in a
// stack buffer. No allocation, no hashing, no static initialisation order concerns.
#include "tether/resp/command_table.hpp"

#include <algorithm>
#include <array>
#include <string>

namespace tether::resp {

namespace {

struct Entry {
  std::string_view name;  // upper case
  CommandClass cls;
};

using C = CommandClass;

// Sorted by name (checked at compile time below). Everything absent is `shared`.
// SYNC and PSYNC would turn a shared connection into a replication stream: always
// denied. Commands that change the topology (SHUTDOWN, REPLICAOF, ...) are denied by
// each service's configurable deny list (services[].deny_commands), not here.
// One entry per line, as sorted (clang-format would pack them in columns).
// clang-format off
constexpr std::array kTable{
    Entry{"AUTH", C::local},
    Entry{"BLMOVE", C::pinned},
    Entry{"BLMPOP", C::pinned},
    Entry{"BLPOP", C::pinned},
    Entry{"BRPOP", C::pinned},
    Entry{"BRPOPLPUSH", C::pinned},
    Entry{"BZMPOP", C::pinned},
    Entry{"BZPOPMAX", C::pinned},
    Entry{"BZPOPMIN", C::pinned},
    Entry{"CLIENT", C::inspect},
    Entry{"DISCARD", C::pinned},
    Entry{"EXEC", C::pinned},
    Entry{"HELLO", C::local},
    Entry{"MONITOR", C::stateful},
    Entry{"MULTI", C::pinned},
    Entry{"PSUBSCRIBE", C::pubsub},
    Entry{"PSYNC", C::denied},
    Entry{"PUNSUBSCRIBE", C::pubsub},
    Entry{"QUIT", C::local},
    Entry{"RESET", C::local},
    Entry{"SCRIPT", C::inspect},
    Entry{"SELECT", C::local},

    Entry{"SSUBSCRIBE", C::pubsub},
    Entry{"SUBSCRIBE", C::pubsub},
    Entry{"SUNSUBSCRIBE", C::pubsub},
    Entry{"SYNC", C::denied},
    Entry{"UNSUBSCRIBE", C::pubsub},
    Entry{"UNWATCH", C::pinned},
    Entry{"WAIT", C::pinned},
    Entry{"WAITAOF", C::pinned},
    Entry{"WATCH", C::pinned},
    Entry{"XREAD", C::inspect},
    Entry{"XREADGROUP", C::inspect},
};
// clang-format on

constexpr bool table_sorted() {
  for (std::size_t i = 1; i < kTable.size(); ++i) {
    if (!(kTable[i - 1].name < kTable[i].name)) return false;
  }
  return true;
}
static_assert(table_sorted(), "kTable must stay sorted for the binary search");

constexpr std::size_t longest_name() {
  std::size_t n = 0;
  for (const Entry& e : kTable)
    n = std::max(n, e.name.size());
  return n;
}
constexpr std::size_t kLongestName = longest_name();

constexpr char to_upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
}

}  // namespace

std::size_t upper_name(std::string_view name, char* out, std::size_t out_len) {
  if (name.size() > out_len) return 0;
  std::transform(name.begin(), name.end(), out, to_upper);
  return name.size();
}

CommandClass classify_command(std::string_view name) {
  std::array<char, kLongestName> buf;
  const std::size_t n = upper_name(name, buf.data(), buf.size());
  if (n == 0) return CommandClass::shared;  // empty, or longer than any listed name
  const std::string_view key(buf.data(), n);
  const auto it = std::lower_bound(kTable.begin(), kTable.end(), key,
                                   [](const Entry& e, std::string_view k) { return e.name < k; });
  return (it != kTable.end() && it->name == key) ? it->cls : CommandClass::shared;
}

bool is_word(std::string_view arg, std::string_view upper_word) {
  return arg.size() == upper_word.size() &&
         std::equal(arg.begin(), arg.end(), upper_word.begin(),
                    [](char a, char b) { return to_upper(a) == b; });
}

namespace {

// XREAD [COUNT n] [BLOCK ms] STREAMS ...; XREADGROUP GROUP g c [COUNT n] [BLOCK ms] [NOACK]
// STREAMS ...: blocking only with a BLOCK option, which comes before STREAMS. Option
// values and everything from STREAMS on (keys, ids) are never taken for the option: a
// key, group or consumer may well be called "block".
CommandClass classify_stream_read(ArgIterator& args, std::string& scratch) {
  std::string_view arg;
  while (args.next(arg, scratch)) {
    if (is_word(arg, "STREAMS")) break;
    if (is_word(arg, "BLOCK")) return CommandClass::pinned;
    const int values = is_word(arg, "GROUP") ? 2 : is_word(arg, "COUNT") ? 1 : 0;
    for (int i = 0; i < values && args.next(arg, scratch); ++i) {
    }
  }
  return CommandClass::shared;
}

}  // namespace

CommandClass classify_request(std::string_view request_bytes, const Request& request) {
  const CommandClass cls = classify_command(request.name);
  if (cls != CommandClass::inspect) return cls;
  ArgIterator args(request_bytes, request);
  std::string scratch;
  std::string_view arg;
  if (!args.next(arg, scratch)) return CommandClass::shared;  // the name itself
  if (is_word(arg, "CLIENT")) {
    // CLIENT SETNAME / GETNAME / ID / NO-EVICT / REPLY are answered by the proxy (they are
    // about the client, not the shared connection); the rest of CLIENT needs a connection
    // of its own.
    if (!args.next(arg, scratch)) return CommandClass::stateful;
    for (std::string_view sub : {"SETNAME", "GETNAME", "ID", "NO-EVICT", "REPLY"}) {
      if (is_word(arg, sub)) return CommandClass::local;
    }
    return CommandClass::stateful;
  }
  if (is_word(arg, "SCRIPT")) {
    // SCRIPT DEBUG turns the connection into a Lua debugging session (and SYNC blocks
    // the server): it must never reach a shared connection.
    return args.next(arg, scratch) && is_word(arg, "DEBUG") ? CommandClass::stateful
                                                            : CommandClass::shared;
  }
  return classify_stream_read(args, scratch);
}

}  // namespace tether::resp
