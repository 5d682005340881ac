// Subscriptions: the channels, patterns and shard channels one client is subscribed to,
// as its (UN)SUBSCRIBE-family commands change them, and how many confirmations Redis
// sends for each command.
//
//   ClientSession ──apply(command, args)──► Subscriptions ──► confirmations owed
//                                                  └─► resubscribe() after a failover
//
// Redis confirms every argument of SUBSCRIBE and UNSUBSCRIBE separately (a name given
// twice is confirmed twice); an UNSUBSCRIBE without arguments confirms every name it
// removes, or once (with a nil name) when there was none. A client is in subscriber
// mode while its channels, patterns and shard channels together number more than 0.
//
// Pure bookkeeping: no I/O. Threading: owned by one session; not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace tether::proxy {

enum class SubscriptionKind : std::uint8_t {
  channel,  // SUBSCRIBE / UNSUBSCRIBE
  pattern,  // PSUBSCRIBE / PUNSUBSCRIBE
  shard,    // SSUBSCRIBE / SUNSUBSCRIBE
};

class Subscriptions {
 public:
  struct Command {
    SubscriptionKind kind;
    bool subscribe;  // false: the UNSUBSCRIBE form
  };
  // A command that re-creates the subscriptions of one kind on a new connection, and
  // how many confirmations it gets.
  struct Resubscribe {
    std::string request;  // RESP multibulk
    std::size_t confirmations;
  };

  // The command an upper-case name stands for, or nullopt for any other name.
  static std::optional<Command> command(std::string_view upper_name);

  // Applies one command with its arguments (after the name) as Redis would, and returns
  // the number of replies Redis sends for it (one error for a SUBSCRIBE form without
  // arguments, which changes nothing).
  std::size_t apply(Command command, const std::vector<std::string>& args);

  // Channels, patterns and shard channels together.
  std::size_t count() const;
  std::size_t count(SubscriptionKind kind) const;
  const std::set<std::string>& names(SubscriptionKind kind) const;
  // One SUBSCRIBE-form request per kind that has names, in the order channel, pattern,
  // shard.
  std::vector<Resubscribe> resubscribe() const;
  void clear();

 private:
  std::array<std::set<std::string>, 3> names_;
};

}  // namespace tether::proxy
