#include "tether/app/status_board.hpp"

#include <cstdio>

namespace tether::app {
namespace {

// JSON string literal of `s` (UTF-8 passed through, control characters escaped).
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string number(double v) {
  return std::to_string(static_cast<long long>(v));
}

}  // namespace

StatusBoard::StatusBoard(std::vector<ServiceInfo> services, const metrics::Metrics& metrics)
    : metrics_(metrics) {
  for (auto& s : services)
    entries_.push_back(Entry{std::move(s), std::nullopt});
}

void StatusBoard::update(std::size_t service, sentinel::WatcherState state) {
  std::lock_guard lock(mu_);
  entries_.at(service).watcher = std::move(state);
}

void StatusBoard::set_upstream(std::size_t service, std::string upstream) {
  std::lock_guard lock(mu_);
  entries_.at(service).info.upstream = std::move(upstream);
}

double StatusBoard::upstream(std::size_t i, metrics::UpstreamState s) const {
  return metrics_.service(i).upstream[static_cast<std::size_t>(s)]->Value();
}

std::optional<std::string> StatusBoard::problem(std::size_t i, const Entry& e) const {
  const bool ready = upstream(i, metrics::UpstreamState::ready) > 0;
  if (e.info.upstream.empty()) {
    if (!e.watcher) return "waiting for the first Sentinel answers";
    const auto& w = *e.watcher;
    switch (w.phase) {
      case sentinel::Phase::starting:
        return "waiting for the first Sentinel answers";
      case sentinel::Phase::no_master:
        return "no Sentinel names a master for '" + e.info.master_name + "'";
      case sentinel::Phase::holding:
        return "failover of '" + e.info.master_name + "' in progress; commands are held";
      case sentinel::Phase::switching:
        return "switching to a promoted replica; commands are held";
      case sentinel::Phase::following:
        break;
    }
    if (!ready) return "no connection to " + w.master->to_string() + " has confirmed ROLE master";
    return std::nullopt;
  }
  if (!ready) return "no connection to " + e.info.upstream + " has confirmed ROLE master";
  return std::nullopt;
}

StatusBoard::Health StatusBoard::health() const {
  std::lock_guard lock(mu_);
  Health h{true, {}};
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const auto& e = entries_[i];
    if (auto why = problem(i, e)) {
      h.ok = false;
      h.text += e.info.name + " down: " + *why + "\n";
    } else {
      const auto master =
          e.info.upstream.empty() ? e.watcher->master->to_string() : e.info.upstream;
      h.text += e.info.name + " ok master=" + master + "\n";
    }
  }
  return h;
}

std::string StatusBoard::status_json() const {
  std::lock_guard lock(mu_);
  std::string out = "{\"services\":[";
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const auto& e = entries_[i];
    const auto& m = metrics_.service(i);
    if (i > 0) out += ",";
    out += "{\"name\":" + quoted(e.info.name) + ",\"listen\":" + quoted(e.info.listen);
    const auto why = problem(i, e);
    out += ",\"healthy\":" + std::string(why ? "false" : "true");
    out += ",\"problem\":" + (why ? quoted(*why) : std::string("null"));
    if (e.info.upstream.empty()) {
      out += ",\"mode\":\"sentinel\",\"master_name\":" + quoted(e.info.master_name);
      const auto* w = e.watcher ? &*e.watcher : nullptr;
      out += ",\"master\":" + (w && w->master ? quoted(w->master->to_string()) : "null");
      out += ",\"epoch\":" + (w && w->epoch ? std::to_string(*w->epoch) : "null");
      out += ",\"phase\":" + quoted(w ? sentinel::to_string(w->phase) : "starting");
      out += ",\"sentinels\":[";
      if (w) {
        for (std::size_t k = 0; k < w->sentinels.size(); ++k) {
          const auto& s = w->sentinels[k];
          if (k > 0) out += ",";
          out += "{\"address\":" + quoted(s.id) + ",\"up\":" + (s.up ? "true" : "false") +
                 ",\"problem\":" + (s.problem.empty() ? "null" : quoted(s.problem)) + "}";
        }
      }
      out += "]";
      out += ",\"hold\":{\"failover_hold\":" +
             std::string(m.failover_hold_active->Value() > 0 ? "true" : "false");
    } else {
      out += ",\"mode\":\"upstream\",\"master\":" + quoted(e.info.upstream);
      out += ",\"hold\":{\"failover_hold\":false";
    }
    out += ",\"held_commands\":" + number(m.held_commands->Value()) +
           ",\"held_bytes\":" + number(m.held_bytes->Value()) + "}";
    out += ",\"clients\":{\"connected\":" + number(m.client_connections->Value()) +
           ",\"accepted\":" + number(m.client_accepted->Value()) + "}";
    out += ",\"upstream_connections\":{\"ready\":" +
           number(upstream(i, metrics::UpstreamState::ready)) +
           ",\"connecting\":" + number(upstream(i, metrics::UpstreamState::connecting)) +
           ",\"draining\":" + number(upstream(i, metrics::UpstreamState::draining)) + "}}";
  }
  return out + "]}\n";
}

}  // namespace tether::app
