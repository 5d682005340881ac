#include "tether/upstream/service_pools.hpp"

#include <spdlog/spdlog.h>

#include <cassert>

namespace tether::upstream {

ServicePools::ServicePools(asio::any_io_executor ex, PoolSettings settings,
                           const metrics::ServiceMetrics& metrics)
    : ex_(ex), settings_(std::move(settings)), metrics_(metrics) {
  settings_.database = 0;
  pools_.resize(1);
  pools_[0] = std::make_unique<Pool>(ex_, settings_for(0), metrics_);
}

ServicePools::~ServicePools() = default;

PoolSettings ServicePools::settings_for(std::uint32_t db) const {
  PoolSettings s = settings_;
  s.database = db;
  return s;
}

void ServicePools::start() {
  started_ = true;
  pools_[0]->start();
}

Pool* ServicePools::find(std::uint32_t db) const {
  return db < pools_.size() ? pools_[db].get() : nullptr;
}

std::size_t ServicePools::count() const {
  std::size_t n = 0;
  for (const auto& p : pools_)
    n += p ? 1 : 0;
  return n;
}

Pool& ServicePools::pool(std::uint32_t db) {
  if (auto* p = find(db)) return *p;
  assert(db < settings_.databases);
  if (db >= pools_.size()) pools_.resize(db + 1);
  auto& p = pools_[db];
  p = std::make_unique<Pool>(ex_, settings_for(db), metrics_);
  spdlog::info("event=db_pool_created service={} db={} upstream={} pools={}", settings_.service, db,
               settings_.target.to_string(), count());
  // Born in the service's current state, as if it had lived through every call so far.
  p->set_feedback(feedback_);
  if (!unavailable_reason_.empty()) p->set_unavailable_reason(unavailable_reason_);
  if (pause_reason_) p->pause(*pause_reason_);
  if (started_) p->start();
  if (stopped_) p->stop();
  return *p;
}

void ServicePools::reconfigure(const PoolSettings& settings) {
  const auto target = settings_.target;
  settings_ = settings;
  settings_.target = target;
  settings_.database = 0;
  for (std::size_t db = 0; db < pools_.size(); ++db) {
    if (pools_[db]) pools_[db]->reconfigure(settings_for(static_cast<std::uint32_t>(db)));
  }
}

void ServicePools::retarget(const util::Endpoint& target, Pool::RetargetMode mode,
                            std::optional<Pool::FailoverTimer> timer) {
  if (stopped_) return;
  settings_.target = target;
  pause_reason_.reset();  // as in Pool::retarget: a pause guards the old target only
  for (auto& p : pools_) {
    if (p) p->retarget(target, mode, timer);
  }
}

void ServicePools::pause(std::string reason) {
  if (stopped_ || pause_reason_) return;
  pause_reason_ = reason;
  for (auto& p : pools_) {
    if (p) p->pause(reason);
  }
}

void ServicePools::resume() {
  pause_reason_.reset();
  for (auto& p : pools_) {
    if (p) p->resume();
  }
}

void ServicePools::set_feedback(const Pool::Feedback& feedback) {
  feedback_ = feedback;
  for (auto& p : pools_) {
    if (p) p->set_feedback(feedback);
  }
}

void ServicePools::set_unavailable_reason(const std::string& reason) {
  unavailable_reason_ = reason;
  for (auto& p : pools_) {
    if (p) p->set_unavailable_reason(reason);
  }
}

void ServicePools::stop() {
  stopped_ = true;
  for (auto& p : pools_) {
    if (p) p->stop();
  }
}

}  // namespace tether::upstream
