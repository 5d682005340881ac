#include "tether/proxy/subscriptions.hpp"

#include "tether/resp/value.hpp"

namespace tether::proxy {
namespace {

std::size_t index(SubscriptionKind kind) {
  return static_cast<std::size_t>(kind);
}

}  // namespace

std::optional<Subscriptions::Command> Subscriptions::command(std::string_view upper_name) {
  using K = SubscriptionKind;
  if (upper_name == "SUBSCRIBE") return Command{K::channel, true};
  if (upper_name == "UNSUBSCRIBE") return Command{K::channel, false};
  if (upper_name == "PSUBSCRIBE") return Command{K::pattern, true};
  if (upper_name == "PUNSUBSCRIBE") return Command{K::pattern, false};
  if (upper_name == "SSUBSCRIBE") return Command{K::shard, true};
  if (upper_name == "SUNSUBSCRIBE") return Command{K::shard, false};
  return std::nullopt;
}

std::size_t Subscriptions::apply(Command command, const std::vector<std::string>& args) {
  auto& set = names_[index(command.kind)];
  if (command.subscribe) {
    if (args.empty()) return 1;  // "wrong number of arguments"
    set.insert(args.begin(), args.end());
    return args.size();
  }
  if (args.empty()) {
    const std::size_t removed = set.size();
    set.clear();
    return removed == 0 ? 1 : removed;
  }
  for (const auto& a : args)
    set.erase(a);
  return args.size();
}

std::size_t Subscriptions::count() const {
  return names_[0].size() + names_[1].size() + names_[2].size();
}

std::size_t Subscriptions::count(SubscriptionKind kind) const {
  return names_[index(kind)].size();
}

const std::set<std::string>& Subscriptions::names(SubscriptionKind kind) const {
  return names_[index(kind)];
}

std::vector<Subscriptions::Resubscribe> Subscriptions::resubscribe() const {
  static constexpr std::array<std::string_view, 3> kNames{"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"};
  std::vector<Resubscribe> out;
  for (std::size_t k = 0; k < names_.size(); ++k) {
    if (names_[k].empty()) continue;
    std::vector<std::string> args;
    args.reserve(names_[k].size() + 1);
    args.emplace_back(kNames[k]);
    args.insert(args.end(), names_[k].begin(), names_[k].end());
    out.push_back({resp::encode_command(args), names_[k].size()});
  }
  return out;
}

void Subscriptions::clear() {
  for (auto& s : names_)
    s.clear();
}

}  // namespace tether::proxy
