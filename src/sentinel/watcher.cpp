#include "tether/sentinel/watcher.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <string_view>
#include <utility>

#include "control_connection.hpp"
#include "tether/sentinel/event_parser.hpp"

namespace tether::sentinel {
namespace {

using asio::use_awaitable;
using boost::system::error_code;

LinkFailure failure_of(std::string_view error) {
  if (error.find("NOAUTH") != std::string_view::npos ||
      error.find("WRONGPASS") != std::string_view::npos ||
      error.find("AUTH") != std::string_view::npos) {
    return LinkFailure::auth_failed;
  }
  return LinkFailure::protocol_error;
}

}  // namespace

struct Watcher::Link {
  Link(asio::any_io_executor ex, util::Endpoint endpoint)
      : id(endpoint.to_string()), ep(std::move(endpoint)), sub(ex), cmd(ex), poll_wake(ex) {}
  SentinelId id;
  util::Endpoint ep;
  ControlConnection sub;  // SUBSCRIBE: failover events
  ControlConnection cmd;  // SENTINEL MASTER polls
  asio::steady_timer poll_wake;
  bool up = false;
  bool poll_requested = false;
  std::uint64_t session = 0;  // bumped per established link; a poll loop serves one
  std::string run_id;         // SENTINEL MYID, once known: tells a peer list's entries apart
  bool removed = false;       // dropped by a reload: its loops end
};

Watcher::Watcher(asio::any_io_executor ex, WatcherSettings settings, WatcherCallbacks callbacks,
                 const metrics::ServiceMetrics& metrics)
    : ex_(ex),
      settings_(std::move(settings)),
      callbacks_(std::move(callbacks)),
      metrics_(metrics),
      resolver_(
          [&] {
            ResolverSettings r;
            r.master_name = settings_.master_name;
            for (const auto& s : settings_.sentinels)
              r.sentinels.push_back(s.to_string());
            r.hold_bound = settings_.hold_bound;
            return r;
          }(),
          Resolver::Clock::now()),
      deadline_(ex) {}

Watcher::~Watcher() {
  stop();
}

void Watcher::start() {
  for (const auto& ep : settings_.sentinels)
    add_link(ep);
  asio::co_spawn(ex_, deadline_loop(), asio::detached);
}

void Watcher::add_link(const util::Endpoint& ep) {
  auto link = std::make_shared<Link>(ex_, ep);
  if (stopped_ || !links_.emplace(link->id, link).second) return;
  asio::co_spawn(ex_, run_link(link), asio::detached);
}

void Watcher::stop() {
  if (stopped_) return;
  stopped_ = true;
  deadline_.cancel();
  for (auto& [id, link] : links_) {
    link->sub.close();
    link->cmd.close();
    link->poll_wake.cancel();
  }
}

void Watcher::reconfigure(WatcherSettings settings) {
  asio::post(ex_, [this, s = std::move(settings)]() mutable { apply(std::move(s)); });
}

void Watcher::apply(WatcherSettings s) {
  if (stopped_) return;
  const bool auth_changed = s.sentinel_username != settings_.sentinel_username ||
                            s.sentinel_password != settings_.sentinel_password;
  std::vector<SentinelId> dropped;
  for (const auto& old : settings_.sentinels) {
    const auto id = old.to_string();
    if (std::none_of(s.sentinels.begin(), s.sentinels.end(),
                     [&](const util::Endpoint& e) { return e.to_string() == id; })) {
      dropped.push_back(id);
    }
  }
  settings_ = std::move(s);
  resolver_.set_hold_bound(settings_.hold_bound);
  for (const auto& id : dropped)
    drop_link(id);
  for (const auto& ep : settings_.sentinels)
    add_link(ep);
  for (auto& [id, link] : links_) {
    if (auth_changed) {
      link->sub.close();  // the link reconnects, and authenticates with the new credentials
      link->cmd.close();
    }
  }
  spdlog::info("event=watcher_reconfigured service={} sentinels={} dropped={} auth_changed={}",
               settings_.service, links_.size(), dropped.size(), auth_changed);
  requery(std::nullopt);  // the new poll interval starts now
  deadline_.cancel();     // and the new hold bound
}

void Watcher::drop_link(const SentinelId& id) {
  auto it = links_.find(id);
  if (it == links_.end()) return;
  auto link = it->second;
  links_.erase(it);
  link->removed = true;
  link->sub.close();
  link->cmd.close();
  link->poll_wake.cancel();
  resolver_.forget(id);
}

void Watcher::upstream_refused(const util::Endpoint& node) {
  asio::post(ex_, [this, node] { feed(UpstreamReadonly{node}); });
}

void Watcher::upstream_lost(const util::Endpoint& node) {
  asio::post(ex_, [this, node] { feed(UpstreamLost{node}); });
}

void Watcher::feed(const Event& event) {
  if (stopped_) return;
  for (const auto& action : resolver_.handle(event, Resolver::Clock::now()))
    perform(action);
  metrics_.sentinels_reachable->Set(static_cast<double>(resolver_.sentinels_up()));
  if (callbacks_.state) {
    callbacks_.state(WatcherState{resolver_.phase(), resolver_.master(), resolver_.epoch(),
                                  resolver_.sentinel_reports()});
  }
  deadline_.cancel();  // the deadline loop re-arms on next_deadline()
}

void Watcher::perform(const Action& action) {
  const auto line = describe(action);
  std::visit(
      [&](const auto& a) {
        using T = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<T, Retarget>) {
          spdlog::info("{} service={}", line, settings_.service);
          std::optional<std::chrono::steady_clock::time_point> began;
          if (a.cause != RetargetCause::startup)
            began = hold_began_.value_or(std::chrono::steady_clock::now());
          end_hold_metrics();
          if (a.cause != RetargetCause::startup) metrics_.master_switches->Increment();
          metrics_.master_info->set(a.master.to_string(),
                                    a.epoch ? std::to_string(*a.epoch) : std::string());
          callbacks_.retarget(a.master, began);
        } else if constexpr (std::is_same_v<T, Hold>) {
          spdlog::info("{} service={}", line, settings_.service);
          if (!hold_began_) {
            hold_began_ = std::chrono::steady_clock::now();
            metrics_.failover_hold_active->Set(1);
          }
          callbacks_.hold("failover of " + settings_.master_name + " in progress (" +
                          std::string(to_string(a.cause)) + ")");
        } else if constexpr (std::is_same_v<T, ReleaseHold>) {
          spdlog::info("{} service={}", line, settings_.service);
          end_hold_metrics();
          callbacks_.release();
        } else if constexpr (std::is_same_v<T, Probe>) {
          spdlog::info("{} service={}", line, settings_.service);
          asio::co_spawn(ex_, probe(a.candidate), asio::detached);
        } else if constexpr (std::is_same_v<T, Requery>) {
          spdlog::debug("{} service={}", line, settings_.service);
          requery(a.sentinel);
        } else if constexpr (std::is_same_v<T, NoMaster>) {
          spdlog::warn("{} service={}", line, settings_.service);
          callbacks_.no_master(a.reason);
        } else {
          spdlog::info("{} service={}", line, settings_.service);
        }
      },
      action);
}

void Watcher::end_hold_metrics() {
  if (!hold_began_) return;
  const std::chrono::duration<double> held = std::chrono::steady_clock::now() - *hold_began_;
  metrics_.failover_hold_seconds->Observe(held.count());
  metrics_.failover_hold_active->Set(0);
  hold_began_.reset();
}

void Watcher::requery(const std::optional<SentinelId>& sentinel) {
  for (auto& [id, link] : links_) {
    if (sentinel && *sentinel != id) continue;
    link->poll_requested = true;
    link->poll_wake.cancel();
  }
}

asio::awaitable<void> Watcher::run_link(std::shared_ptr<Link> link) {
  auto backoff = settings_.reconnect_min;
  asio::steady_timer pause(ex_);
  const auto timeout = settings_.connect_timeout;
  while (!stopped_ && !link->removed) {
    LinkFailure cause = LinkFailure::unreachable;
    std::string err = co_await link->sub.connect(link->ep, timeout);
    if (err.empty()) {
      err = co_await link->sub.auth(settings_.sentinel_username, settings_.sentinel_password,
                                    timeout);
      if (!err.empty()) cause = failure_of(err);
    }
    if (err.empty()) {
      err = co_await link->cmd.connect(link->ep, timeout);
      if (err.empty()) {
        err = co_await link->cmd.auth(settings_.sentinel_username, settings_.sentinel_password,
                                      timeout);
        if (!err.empty()) cause = failure_of(err);
      }
    }
    if (err.empty()) {
      std::vector<std::string> args{"SUBSCRIBE"};
      for (auto channel : kSubscribedChannels)
        args.emplace_back(channel);
      err = co_await link->sub.send(args);
      for (std::size_t i = 0; err.empty() && i + 1 < args.size(); ++i) {
        auto confirm = co_await link->sub.read(timeout, err);
        if (confirm && confirm->is_error()) {
          err = confirm->str;
          cause = failure_of(err);
        }
      }
    }
    if (stopped_ || link->removed) break;
    if (!err.empty()) {
      link->sub.close();
      link->cmd.close();
      feed(SentinelLost{link->id, cause, err});
      pause.expires_after(backoff);
      error_code ec;
      co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
      backoff = std::min(backoff * 2, settings_.reconnect_max);
      continue;
    }
    backoff = settings_.reconnect_min;
    link->up = true;
    ++link->session;
    feed(SentinelConnected{link->id});
    asio::co_spawn(ex_, poll_loop(link, link->session), asio::detached);
    for (;;) {
      auto message = co_await link->sub.read(std::chrono::milliseconds(0), err);
      if (!message) break;
      const auto& e = message->elements;
      if (message->type == resp::Value::Type::array && e.size() == 3 && e[0].str == "message") {
        if (auto event =
                parse_pubsub_message(link->id, settings_.master_name, e[1].str, e[2].str)) {
          feed(*event);
        }
      }
    }
    link->up = false;
    link->cmd.close();
    link->poll_wake.cancel();
    if (stopped_ || link->removed) break;
    feed(SentinelLost{link->id, LinkFailure::disconnected, err});
    pause.expires_after(settings_.reconnect_min);
    error_code ec;
    co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
  }
}

asio::awaitable<void> Watcher::poll_loop(std::shared_ptr<Link> link, std::uint64_t session) {
  const std::vector<std::string> poll{"SENTINEL", "MASTER", settings_.master_name};
  auto current = [&] {
    return !stopped_ && !link->removed && link->up && link->session == session;
  };
  if (link->run_id.empty()) {
    const std::vector<std::string> myid{"SENTINEL", "MYID"};
    std::string err;
    auto id = co_await link->cmd.command(myid, settings_.connect_timeout, err);
    if (id && id->type == resp::Value::Type::string) link->run_id = id->str;
  }
  while (current()) {
    link->poll_requested = false;
    std::string err;
    auto reply = co_await link->cmd.command(poll, settings_.connect_timeout, err);
    if (!current()) break;
    if (!reply) {
      link->sub.close();  // the link's reader sees it and reconnects both connections
      break;
    }
    if (reply->is_error()) {
      if (is_unknown_master_error(reply->str)) {
        feed(PollUnknownMaster{link->id});
      } else {
        feed(SentinelLost{link->id, failure_of(reply->str), reply->str});
      }
    } else if (reply->type == resp::Value::Type::array) {
      std::vector<std::string_view> fields;
      fields.reserve(reply->elements.size());
      for (const auto& f : reply->elements)
        fields.push_back(f.str);
      std::string why;
      if (auto answer = parse_master_reply(link->id, fields, &why)) {
        feed(*answer);
      } else {
        spdlog::warn("event=sentinel_bad_reply service={} sentinel={} detail=\"{}\"",
                     settings_.service, link->id, why);
      }
      co_await discover(link);
      if (!current()) break;
    }
    if (link->poll_requested || stopped_) continue;
    link->poll_wake.expires_after(settings_.poll_interval);
    error_code ec;
    co_await link->poll_wake.async_wait(asio::redirect_error(use_awaitable, ec));
  }
}

asio::awaitable<void> Watcher::discover(std::shared_ptr<Link> link) {
  const std::vector<std::string> ask{"SENTINEL", "SENTINELS", settings_.master_name};
  std::string err;
  auto reply = co_await link->cmd.command(ask, settings_.connect_timeout, err);
  if (stopped_ || !reply || reply->type != resp::Value::Type::array) co_return;
  std::vector<std::string_view> fields;
  for (const auto& entry : reply->elements) {
    fields.clear();
    for (const auto& f : entry.elements)
      fields.push_back(f.str);
    auto peer = parse_peer_sentinel(fields);
    if (!peer || !peer->reachable || links_.contains(peer->address.to_string())) continue;
    const bool known = !peer->run_id.empty() &&
                       std::any_of(links_.begin(), links_.end(),
                                   [&](const auto& l) { return l.second->run_id == peer->run_id; });
    if (known) continue;
    if (links_.size() >= kMaxSentinels) {
      if (std::exchange(cap_noted_, true)) continue;
      spdlog::warn(
          "event=sentinel_not_added service={} sentinel={} via={} detail=\"already "
          "linked to {} Sentinels\"",
          settings_.service, peer->address.to_string(), link->id, kMaxSentinels);
      continue;
    }
    spdlog::info("event=sentinel_discovered service={} sentinel={} via={}", settings_.service,
                 peer->address.to_string(), link->id);
    add_link(peer->address);
  }
}

asio::awaitable<void> Watcher::probe(util::Endpoint candidate) {
  ControlConnection c(ex_);
  const auto timeout = settings_.connect_timeout;
  std::string err = co_await c.connect(candidate, timeout);
  if (err.empty())
    err = co_await c.auth(settings_.upstream_username, settings_.upstream_password, timeout);
  std::optional<resp::Value> role;
  const std::vector<std::string> role_command{"ROLE"};
  if (err.empty()) role = co_await c.command(role_command, timeout, err);
  if (stopped_) co_return;
  if (!err.empty()) {
    feed(RoleCheckFailed{candidate, err});
  } else if (role->is_error()) {
    feed(RoleCheckFailed{candidate, role->str});
  } else if (role->type != resp::Value::Type::array || role->elements.empty() ||
             role->elements[0].str != "master") {
    feed(RoleCheckFailed{candidate, "role=" + (role->elements.empty() ? std::string("unknown")
                                                                      : role->elements[0].str)});
  } else {
    feed(RoleConfirmed{candidate});
  }
}

asio::awaitable<void> Watcher::deadline_loop() {
  while (!stopped_) {
    auto next = resolver_.next_deadline();
    deadline_.expires_at(next ? *next : asio::steady_timer::time_point::max());
    error_code ec;
    co_await deadline_.async_wait(asio::redirect_error(use_awaitable, ec));
    if (stopped_) break;
    if (!ec) feed(Tick{});
  }
}

}  // namespace tether::sentinel
