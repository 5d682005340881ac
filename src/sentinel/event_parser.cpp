#include "tether/sentinel/event_parser.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <vector>

namespace tether::sentinel {

namespace {

// Sentinel messages are a handful of words; more than this is not a message we know.
constexpr std::size_t kMaxWords = 16;
constexpr std::string_view kAbortPrefix = "-failover-abort-";

// Splits on single spaces (Sentinel's own separator); nullopt past kMaxWords.
std::optional<std::vector<std::string_view>> words(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    const auto space = text.find(' ');
    const auto word = text.substr(0, space);
    if (!word.empty()) {
      if (out.size() == kMaxWords) return std::nullopt;
      out.push_back(word);
    }
    if (space == std::string_view::npos) break;
    text.remove_prefix(space + 1);
  }
  return out;
}

template <class Int>
std::optional<Int> number(std::string_view text) {
  Int value{};
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

std::optional<util::Endpoint> endpoint(std::string_view ip, std::string_view port) {
  const auto p = number<std::uint16_t>(port);
  if (ip.empty() || !p || *p == 0) return std::nullopt;
  util::Endpoint ep;
  ep.host = std::string(ip);
  ep.port = *p;
  return ep;
}

// An instance in sentinelEvent()'s "%@" form, with whatever words follow it.
struct Instance {
  std::string_view type;  // "master", "slave", "sentinel"
  util::Endpoint addr;
  std::string_view master_name;
  util::Endpoint master;
  std::span<const std::string_view> extra;
};

std::optional<Instance> instance(std::span<const std::string_view> w) {
  if (w.size() < 4) return std::nullopt;
  Instance in;
  in.type = w[0];
  auto addr = endpoint(w[2], w[3]);
  if (!addr) return std::nullopt;
  in.addr = *addr;
  if (in.type == "master") {
    in.master_name = w[1];
    in.master = in.addr;
    in.extra = w.subspan(4);
    return in;
  }
  if (w.size() < 8 || w[4] != "@") return std::nullopt;
  auto master = endpoint(w[6], w[7]);
  if (!master) return std::nullopt;
  in.master_name = w[5];
  in.master = *master;
  in.extra = w.subspan(8);
  return in;
}

std::optional<Event> master_event(std::string_view sentinel, std::string_view channel,
                                  const Instance& in) {
  const SentinelId id(sentinel);
  if (channel == "+sdown" || channel == "-sdown" || channel == "+odown" || channel == "-odown") {
    const DownKind kind = channel.substr(1) == "sdown" ? DownKind::sdown : DownKind::odown;
    return MasterDown{id, kind, channel[0] == '+', in.master};
  }
  if (channel == "+try-failover") {
    std::optional<Epoch> epoch;
    if (!in.extra.empty()) epoch = number<Epoch>(in.extra[0]);
    return TryFailover{id, in.master, epoch};
  }
  if (channel == "+failover-end") return FailoverEnded{id, in.master};
  if (channel.starts_with(kAbortPrefix) && channel.size() > kAbortPrefix.size()) {
    return FailoverAborted{id, in.master, std::string(channel.substr(kAbortPrefix.size()))};
  }
  return std::nullopt;
}

std::optional<Event> replica_event(std::string_view sentinel, std::string_view channel,
                                   const Instance& in) {
  if (in.type != "slave" && in.type != "replica") return std::nullopt;
  if (channel == "+selected-slave")
    return ReplicaSelected{SentinelId(sentinel), in.addr, in.master};
  if (channel == "+promoted-slave")
    return ReplicaPromoted{SentinelId(sentinel), in.addr, in.master};
  return std::nullopt;
}

std::optional<Event> switch_master(std::string_view sentinel, std::string_view master_name,
                                   std::span<const std::string_view> w) {
  if (w.size() < 5 || w[0] != master_name) return std::nullopt;
  auto old_master = endpoint(w[1], w[2]);
  auto new_master = endpoint(w[3], w[4]);
  if (!old_master || !new_master) return std::nullopt;
  return SwitchMaster{SentinelId(sentinel), *old_master, *new_master};
}

}  // namespace

std::optional<Event> parse_pubsub_message(std::string_view sentinel, std::string_view master_name,
                                          std::string_view channel, std::string_view payload) {
  const auto w = words(payload);
  if (!w) return std::nullopt;
  if (channel == "+new-epoch") {
    // The Sentinel's current epoch, shared by every master it monitors.
    if (w->size() != 1) return std::nullopt;
    const auto epoch = number<Epoch>((*w)[0]);
    if (!epoch) return std::nullopt;
    return NewEpoch{SentinelId(sentinel), *epoch};
  }
  if (channel == "+switch-master") return switch_master(sentinel, master_name, *w);
  const auto in = instance(*w);
  if (!in || in->master_name != master_name) return std::nullopt;
  if (in->type == "master") return master_event(sentinel, channel, *in);
  return replica_event(sentinel, channel, *in);
}

std::optional<PollAnswer> parse_master_reply(std::string_view sentinel,
                                             std::span<const std::string_view> fields,
                                             std::string* why) {
  auto fail = [why](const char* msg) -> std::optional<PollAnswer> {
    if (why) *why = msg;
    return std::nullopt;
  };
  std::optional<std::string_view> ip;
  std::optional<std::string_view> port;
  std::optional<std::string_view> epoch;
  std::string_view flags;
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
    if (fields[i] == "ip") ip = fields[i + 1];
    if (fields[i] == "port") port = fields[i + 1];
    if (fields[i] == "config-epoch") epoch = fields[i + 1];
    if (fields[i] == "flags") flags = fields[i + 1];
  }
  if (!ip || !port || !epoch) return fail("SENTINEL MASTER reply lacks ip, port or config-epoch");
  const auto addr = endpoint(*ip, *port);
  if (!addr) return fail("SENTINEL MASTER reply has a malformed ip or port");
  const auto config_epoch = number<Epoch>(*epoch);
  if (!config_epoch) return fail("SENTINEL MASTER reply has a malformed config-epoch");
  return PollAnswer{SentinelId(sentinel), *addr, *config_epoch,
                    flags.find("failover_in_progress") != std::string_view::npos};
}

std::optional<PeerSentinel> parse_peer_sentinel(std::span<const std::string_view> fields) {
  std::optional<std::string_view> ip;
  std::optional<std::string_view> port;
  std::string_view run_id;
  std::string_view flags;
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
    if (fields[i] == "ip") ip = fields[i + 1];
    if (fields[i] == "port") port = fields[i + 1];
    if (fields[i] == "runid") run_id = fields[i + 1];
    if (fields[i] == "flags") flags = fields[i + 1];
  }
  if (!ip || !port) return std::nullopt;
  auto addr = endpoint(*ip, *port);
  if (!addr) return std::nullopt;
  const bool down = flags.find("s_down") != std::string_view::npos ||
                    flags.find("disconnected") != std::string_view::npos;
  return PeerSentinel{std::move(*addr), std::string(run_id), !down};
}

bool is_unknown_master_error(std::string_view error_text) {
  constexpr std::string_view kNeedle = "no such master";
  const auto it =
      std::search(error_text.begin(), error_text.end(), kNeedle.begin(), kNeedle.end(),
                  [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
  return it != error_text.end();
}

}  // namespace tether::sentinel
