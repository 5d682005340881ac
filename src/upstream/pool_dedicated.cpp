// Pool, dedicated side: the clients' own connections and the warm set they come from.
//
//   request_dedicated(owner) ─► co_spawn obtain_dedicated (runs a turn later, so the owner
//                               never hears from within request_dedicated)
//     loop until handed, the owner is gone, the pool stops or hold.timeout passes:
//       paused or no target ──► wait (backoff)
//       hand_over_warm ───────► a ready warm_ entry becomes the owner's ─► fill_warm()
//       otherwise ────────────► dial one for the owner; on_ready hands it over
//
//   fill_warm ─► Connection per missing warm_ entry ─► run_warm (awaits its whole life)
//     ended while still in warm_ (died idle, or the dial failed) ─► refill_warm_later
//     (one timer, reconnect_min doubling to reconnect_max; reset when one is handed over
//     or the target changes), so a server that keeps dropping them is never redialled in
//     a tight loop.
//
// Every dedicated connection, warm or the owner's, is in dedicated_ by its address while
// it runs: on_ready and on_lost find there what it is for. A warm entry's map value is
// replaced by the owner's request at the hand-over, so on_lost then reaches the owner and
// counts the connection down (warm ones count against max_dedicated only from then on).
//
// Threading: the pool's; everything here runs on its executor.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "tether/upstream/pool.hpp"

namespace tether::upstream {

using asio::use_awaitable;
using boost::system::error_code;

bool Pool::request_dedicated(std::weak_ptr<DedicatedOwner> owner) {
  if (stopped_ || dedicated_count_ >= settings_.max_dedicated) return false;
  ++dedicated_count_;
  auto request = std::make_shared<DedicatedRequest>();
  request->owner = std::move(owner);
  asio::co_spawn(ex_, obtain_dedicated(std::move(request)), asio::detached);
  return true;
}

void Pool::release_dedicated(const std::shared_ptr<Connection>& connection) {
  if (connection) connection->close();
}

std::size_t Pool::dedicated_warm_ready() const {
  return static_cast<std::size_t>(std::count_if(
      warm_.begin(), warm_.end(), [](const auto& w) { return w->connection->accepting(); }));
}

void Pool::end_dedicated(bool at_once) {
  // drain() and close() only close sockets: on_lost (which changes the map) comes later,
  // from each connection's own coroutine.
  for (auto& [conn, request] : dedicated_) {
    if (!request->handed) continue;
    if (at_once) {
      request->connection->close();
    } else {
      request->connection->drain();
    }
  }
}

// One dedicated connection's whole life: a warm one, or dial (again after a failure, with
// backoff, not while paused) until one is ready and handed over, or hold.timeout passes;
// then wait until the owner's connection closes.
asio::awaitable<void> Pool::obtain_dedicated(std::shared_ptr<DedicatedRequest> request) {
  using clock = asio::steady_timer::clock_type;
  const auto deadline = clock::now() + settings_.hold_timeout;
  auto backoff = settings_.reconnect_min;
  asio::steady_timer timer(ex_);
  std::string why;
  for (bool first = true;; first = false) {
    if (stopped_) {
      why = "redis-tether is stopping";
      break;
    }
    if (request->owner.expired()) break;
    if (!first && clock::now() >= deadline) {
      why = no_upstream_reason();
      break;
    }
    if (!paused_ && targeted()) {
      if (hand_over_warm(request)) co_return;  // counted down by on_lost, as below
      auto conn =
          std::make_shared<Connection>(ex_, settings_, metrics_, *this, next_id_++, generation_);
      request->connection = conn;
      dedicated_[conn.get()] = request;
      co_await conn->run();  // until it closes: a failed dial, or the end of its use
      dedicated_.erase(conn.get());
      request->connection.reset();
      if (request->handed) co_return;  // used and closed: counted down by on_lost
      if (!conn->last_error().empty()) last_error_ = conn->last_error();
    }
    const auto left = deadline - clock::now();
    timer.expires_after(std::max(std::min<clock::duration>(backoff, left), clock::duration{}));
    error_code ec;
    dedicated_waits_.insert(&timer);
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    dedicated_waits_.erase(&timer);
    // Woken early: something changed (see wake_dedicated_waits), start over at the minimum.
    backoff = ec == asio::error::operation_aborted ? settings_.reconnect_min
                                                   : std::min(backoff * 2, settings_.reconnect_max);
  }
  --dedicated_count_;
  if (why.empty()) co_return;
  if (auto owner = request->owner.lock()) owner->dedicated_failed(why);
}

bool Pool::dedicated_ready_event(Connection& c) {
  auto it = dedicated_.find(&c);
  if (it == dedicated_.end()) return false;
  auto request = it->second;
  if (request->warm) {
    // Idle until handed over. (A retarget closes the old target's warm ones; this only
    // catches one whose handshake finished in the same turn.)
    if (c.generation() != generation_) {
      c.close();
    } else {
      wake_dedicated_waits();  // a request waiting out a backoff can take it now
    }
    return true;
  }
  auto owner = request->owner.lock();
  // Dialled before a retarget or a pause: not for the client (obtain_dedicated retries).
  if (!owner || c.generation() != generation_ || paused_) {
    c.close();
    return true;
  }
  request->handed = true;
  owner->dedicated_ready(request->connection);
  return true;
}

void Pool::wake_dedicated_waits() {
  for (auto* timer : dedicated_waits_)
    timer->cancel();
}

bool Pool::dedicated_lost_event(Connection& c, std::vector<Unsent>& unsent) {
  auto it = dedicated_.find(&c);
  if (it == dedicated_.end()) return false;
  if (!it->second->handed) return true;  // a failed attempt or an idle warm one
  // Counted down now, before the owner may ask for another (at max_dedicated it must
  // get one).
  --dedicated_count_;
  if (auto owner = it->second->owner.lock()) owner->dedicated_lost(c, std::move(unsent));
  return true;
}

// Never more than max_dedicated: there would be nobody to hand the extra ones to.
std::size_t Pool::warm_wanted() const {
  return std::min(settings_.dedicated_warm, settings_.max_dedicated);
}

// Called from obtain_dedicated, a turn after request_dedicated: whatever closed a warm
// connection in between (a pause, a retarget, the server) is seen here, so the owner
// never gets a dead one; when none is ready the caller dials as before. One the server
// closed whose read loop has not run yet is still accepting(): peer_open() catches it.
bool Pool::hand_over_warm(const std::shared_ptr<DedicatedRequest>& request) {
  if (paused_) return false;
  auto it = std::find_if(warm_.begin(), warm_.end(), [](const auto& w) {
    return w->connection->accepting() && w->connection->peer_open();
  });
  if (it == warm_.end()) return false;
  auto owner = request->owner.lock();
  if (!owner) return false;
  auto conn = (*it)->connection;
  warm_.erase(it);
  request->connection = conn;
  request->handed = true;
  dedicated_[conn.get()] = request;  // on_lost now reaches the owner
  warm_backoff_ = settings_.reconnect_min;
  fill_warm();  // its replacement
  owner->dedicated_ready(std::move(conn));
  return true;
}

// Dials the missing warm connections, to the current target and generation; not while
// paused (the target is on its way out) and not before there is a target.
void Pool::fill_warm() {
  if (stopped_ || paused_ || !targeted()) return;
  while (warm_.size() < warm_wanted()) {
    auto entry = std::make_shared<DedicatedRequest>();
    entry->warm = true;
    entry->connection =
        std::make_shared<Connection>(ex_, settings_, metrics_, *this, next_id_++, generation_);
    dedicated_[entry->connection.get()] = entry;
    warm_.push_back(entry);
    asio::co_spawn(ex_, run_warm(std::move(entry)), asio::detached);
  }
}

// Closes warm connections beyond the first `keep` (a retarget: all; a reload: the extra).
void Pool::close_warm(std::size_t keep) {
  while (warm_.size() > keep) {
    warm_.back()->connection->close();
    warm_.pop_back();
  }
}

asio::awaitable<void> Pool::run_warm(std::shared_ptr<DedicatedRequest> entry) {
  auto conn = entry->connection;
  co_await conn->run();
  dedicated_.erase(conn.get());
  // Still in warm_: nobody took or closed it; it died idle or never became ready.
  if (std::erase(warm_, entry) > 0) refill_warm_later();
}

void Pool::refill_warm_later() {
  if (stopped_ || warm_timer_armed_) return;
  warm_timer_armed_ = true;
  warm_timer_.expires_after(warm_backoff_);
  warm_backoff_ = std::min(warm_backoff_ * 2, settings_.reconnect_max);
  warm_timer_.async_wait([this](error_code ec) {
    if (ec) return;  // stop() or the pool's destruction: `this` may be gone
    warm_timer_armed_ = false;
    fill_warm();
  });
}

}  // namespace tether::upstream
