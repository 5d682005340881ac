#include "tether/metrics/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace tether::metrics {

std::string_view close_reason_name(CloseReason r) {
  switch (r) {
    case CloseReason::protocol_error:
      return "protocol_error";
    case CloseReason::request_too_large:
      return "request_too_large";
    case CloseReason::output_limit:
      return "output_limit";
    case CloseReason::max_clients:
      return "max_clients";
    case CloseReason::quit:
      return "quit";
    case CloseReason::resubscribe_failed:
      return "resubscribe_failed";
    case CloseReason::kCount:
      break;
  }
  return "unknown";
}

std::string_view limit_name(Limit l) {
  switch (l) {
    case Limit::max_clients:
      return "max_clients";
    case Limit::max_request_bytes:
      return "max_request_bytes";
    case Limit::output_hard_limit:
      return "output_hard_limit";
    case Limit::max_pending:
      return "max_pending";
    case Limit::output_soft_limit:
      return "output_soft_limit";
    case Limit::hold_max_bytes:
      return "hold_max_bytes";
    case Limit::hold_timeout:
      return "hold_timeout";
    case Limit::max_dedicated:
      return "max_dedicated";
    case Limit::kCount:
      break;
  }
  return "unknown";
}

std::string_view upstream_state_name(UpstreamState s) {
  switch (s) {
    case UpstreamState::connecting:
      return "connecting";
    case UpstreamState::ready:
      return "ready";
    case UpstreamState::draining:
      return "draining";
    case UpstreamState::kCount:
      break;
  }
  return "unknown";
}

MasterInfo::MasterInfo(prometheus::Family<prometheus::Gauge>& family, std::string service)
    : family_(family), service_(std::move(service)) {}

void MasterInfo::set(const std::string& address, const std::string& epoch) {
  std::lock_guard lock(mu_);
  if (current_) family_.Remove(current_);
  current_ = &family_.Add({{"service", service_}, {"address", address}, {"epoch", epoch}});
  current_->Set(1);
}

void ServiceMetrics::closed(CloseReason r) const {
  client_closed[static_cast<std::size_t>(r)]->Increment();
}

void ServiceMetrics::limit_hit(Limit l) const {
  limit_hits[static_cast<std::size_t>(l)]->Increment();
}

void ServiceMetrics::error_reply(resp::ErrorCode c) const {
  error_replies[static_cast<std::size_t>(c)]->Increment();
}

void ServiceMetrics::upstream_state(UpstreamState s, double delta) const {
  upstream[static_cast<std::size_t>(s)]->Increment(delta);
}

Metrics::Metrics(const std::vector<std::string>& services)
    : registry_(std::make_shared<prometheus::Registry>()) {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  auto& connections = BuildGauge()
                          .Name("redis_tether_client_connections")
                          .Help("Client connections currently open")
                          .Register(*registry_);
  auto& accepted = BuildCounter()
                       .Name("redis_tether_client_connections_accepted_total")
                       .Help("Client connections accepted")
                       .Register(*registry_);
  auto& closed = BuildCounter()
                     .Name("redis_tether_client_connections_closed_total")
                     .Help("Client connections closed by the proxy, by reason")
                     .Register(*registry_);
  auto& buffers = BuildGauge()
                      .Name("redis_tether_client_buffer_bytes")
                      .Help("Bytes the proxy holds in client buffers (allocated capacity)")
                      .Register(*registry_);
  auto& paused = BuildGauge()
                     .Name("redis_tether_client_reads_paused")
                     .Help("Clients whose reading is paused by backpressure")
                     .Register(*registry_);
  auto& forwarded = BuildCounter()
                        .Name("redis_tether_commands_forwarded_total")
                        .Help("Commands written to an upstream")
                        .Register(*registry_);
  auto& errors = BuildCounter()
                     .Name("redis_tether_error_replies_total")
                     .Help("Error replies written by the proxy itself, by code")
                     .Register(*registry_);
  auto& upstream = BuildGauge()
                       .Name("redis_tether_upstream_connections")
                       .Help("Upstream connections by state")
                       .Register(*registry_);
  auto& connect_failures = BuildCounter()
                               .Name("redis_tether_upstream_connect_failures_total")
                               .Help("Upstream connection attempts that failed")
                               .Register(*registry_);
  auto& held = BuildGauge()
                   .Name("redis_tether_held_commands")
                   .Help("Commands held while no upstream is available")
                   .Register(*registry_);
  auto& held_bytes = BuildGauge()
                         .Name("redis_tether_held_bytes")
                         .Help("Request bytes held while no upstream is available")
                         .Register(*registry_);
  auto& expired = BuildCounter()
                      .Name("redis_tether_hold_expired_total")
                      .Help("Held commands answered NOMASTER after hold.timeout")
                      .Register(*registry_);
  auto& limits = BuildCounter()
                     .Name("redis_tether_limit_hits_total")
                     .Help("Times a configured limit was reached, by limit")
                     .Register(*registry_);
  auto& resent = BuildCounter()
                     .Name("redis_tether_commands_resent_total")
                     .Help(
                         "Commands a node refused as no longer master (READONLY, LOADING, "
                         "MASTERDOWN), held and sent again")
                     .Register(*registry_);
  auto& resubscribed = BuildCounter()
                           .Name("redis_tether_subscribers_resubscribed_total")
                           .Help(
                               "Subscribers whose dedicated connection was lost and that were "
                               "subscribed again on a new one")
                           .Register(*registry_);
  auto& switches = BuildCounter()
                       .Name("redis_tether_master_switches_total")
                       .Help("Sentinel master switches followed (start-up not counted)")
                       .Register(*registry_);
  auto& master_info = BuildGauge()
                          .Name("redis_tether_master_info")
                          .Help("The master the proxy writes to (1), with its config-epoch")
                          .Register(*registry_);
  auto& reachable = BuildGauge()
                        .Name("redis_tether_sentinels_reachable")
                        .Help("Sentinels the watcher is connected and subscribed to")
                        .Register(*registry_);
  auto& hold_active = BuildGauge()
                          .Name("redis_tether_failover_hold_active")
                          .Help("1 while a failover holds new commands off the old master")
                          .Register(*registry_);
  auto& hold_seconds = prometheus::BuildHistogram()
                           .Name("redis_tether_failover_hold_duration_seconds")
                           .Help(
                               "How long each failover hold lasted (until the switch or "
                               "the release to the old master)")
                           .Register(*registry_);
  auto& failover_seconds =
      prometheus::BuildHistogram()
          .Name("redis_tether_failover_duration_seconds")
          .Help(
              "From a failover's first event (the hold, or the switch when none came "
              "first) to the first reply from the new master through the proxy")
          .Register(*registry_);
  const prometheus::Histogram::BucketBoundaries buckets{0.001, 0.005, 0.01, 0.05, 0.1, 0.25,
                                                        0.5,   1,     2.5,  5,    10,  30};

  services_.reserve(services.size());
  for (const auto& name : services) {
    ServiceMetrics m;
    const prometheus::Labels s{{"service", name}};
    auto with = [&](const char* k, std::string_view v) {
      auto l = s;
      l.emplace(k, std::string(v));
      return l;
    };
    m.client_connections = &connections.Add(s);
    m.client_accepted = &accepted.Add(s);
    for (std::size_t i = 0; i < m.client_closed.size(); ++i) {
      m.client_closed[i] =
          &closed.Add(with("reason", close_reason_name(static_cast<CloseReason>(i))));
    }
    m.buffer_in_bytes = &buffers.Add(with("direction", "in"));
    m.buffer_out_bytes = &buffers.Add(with("direction", "out"));
    m.reads_paused = &paused.Add(s);
    m.commands_forwarded = &forwarded.Add(s);
    for (std::size_t i = 0; i < m.error_replies.size(); ++i) {
      m.error_replies[i] =
          &errors.Add(with("code", resp::error_code_label(static_cast<resp::ErrorCode>(i))));
    }
    for (std::size_t i = 0; i < m.upstream.size(); ++i) {
      m.upstream[i] =
          &upstream.Add(with("state", upstream_state_name(static_cast<UpstreamState>(i))));
    }
    m.upstream_connect_failures = &connect_failures.Add(s);
    m.held_commands = &held.Add(s);
    m.held_bytes = &held_bytes.Add(s);
    m.hold_expired = &expired.Add(s);
    m.commands_resent = &resent.Add(s);
    m.resubscribed = &resubscribed.Add(s);
    for (std::size_t i = 0; i < m.limit_hits.size(); ++i)
      m.limit_hits[i] = &limits.Add(with("limit", limit_name(static_cast<Limit>(i))));
    m.master_switches = &switches.Add(s);
    m.sentinels_reachable = &reachable.Add(s);
    m.failover_hold_active = &hold_active.Add(s);
    m.failover_hold_seconds = &hold_seconds.Add(s, buckets);
    m.failover_seconds = &failover_seconds.Add(s, buckets);
    master_infos_.push_back(std::make_unique<MasterInfo>(master_info, name));
    m.master_info = master_infos_.back().get();
    services_.push_back(m);
  }
}

Metrics::~Metrics() = default;

std::string Metrics::serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace tether::metrics
