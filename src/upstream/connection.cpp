#include "tether/upstream/connection.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cerrno>

#include "tether/resp/error_replies.hpp"
#include "tether/resp/value.hpp"
#include "tether/util/chained_reads.hpp"

namespace tether::upstream {
namespace {

using asio::use_awaitable;
using boost::system::error_code;

// Replies in flight per connection are bounded by the clients' own limits
// (limits.max_pending each); the read buffer starts small and grows only for large
// replies.
constexpr std::size_t kReadBufferInitial = 16 * 1024;
constexpr std::size_t kReadChunk = 16 * 1024;

void set_nodelay(asio::generic::stream_protocol::socket& s) {
  int one = 1;
  ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Replies by which a node refuses a command without running it because it is not a
// serving master: a replica (-READONLY for writes, -MASTERDOWN with
// replica-serve-stale-data no) or a node loading its dataset (-LOADING).
bool is_refusal(std::string_view reply) {
  for (std::string_view code : {"-READONLY ", "-LOADING ", "-MASTERDOWN "}) {
    if (reply.starts_with(code)) return true;
  }
  return false;
}

// sent_ keeps at most this many bytes of answered requests before it is compacted.
constexpr std::size_t kSentCompactBytes = 64 * 1024;
constexpr std::size_t kBufferKeepBytes = 1u << 20;

}  // namespace

Connection::Connection(asio::any_io_executor ex, const PoolSettings& settings,
                       const metrics::ServiceMetrics& metrics, ConnectionEvents& events,
                       std::uint64_t id, std::uint64_t generation)
    : ex_(ex),
      settings_(settings),
      metrics_(metrics),
      events_(events),
      id_(id),
      generation_(generation),
      socket_(ex),
      deadline_(ex),
      wake_(ex),
      framer_(settings.protocol) {
  wake_.expires_at(asio::steady_timer::time_point::max());
  metrics_.upstream_state(metrics::UpstreamState::connecting, 1);
}

Connection::~Connection() {
  if (state_ == State::connecting) metrics_.upstream_state(metrics::UpstreamState::connecting, -1);
  if (state_ == State::ready) {
    metrics_.upstream_state(
        draining_ ? metrics::UpstreamState::draining : metrics::UpstreamState::ready, -1);
  }
}

void Connection::set_state(State s) {
  auto gauge_of = [this](State st) {
    if (st == State::connecting) return metrics::UpstreamState::connecting;
    return draining_ ? metrics::UpstreamState::draining : metrics::UpstreamState::ready;
  };
  if (state_ != State::closed) metrics_.upstream_state(gauge_of(state_), -1);
  state_ = s;
  if (state_ != State::closed) metrics_.upstream_state(gauge_of(state_), 1);
}

void Connection::fail(std::string why) {
  last_error_ = std::move(why);
}

asio::awaitable<bool> Connection::run() {
  auto self = shared_from_this();
  deadline_.expires_after(settings_.connect_timeout);
  deadline_.async_wait([self](error_code ec) {
    if (!ec && self->state_ == State::connecting) {
      self->timed_out_ = true;
      error_code ignored;
      self->socket_.close(ignored);
    }
  });
  bool ok = co_await dial();
  if (ok && !closing_) ok = co_await handshake();
  deadline_.cancel();
  // close() during the dial may come before the socket is open (while the name resolves):
  // dial() then opens it anyway, so a closed connection is caught here, never made ready.
  if (closing_) {
    error_code ignored;
    socket_.close(ignored);
    set_state(State::closed);
    co_return false;
  }
  if (!ok) {
    if (timed_out_) {
      fail("connect to " + settings_.target.to_string() + " timed out after " +
           std::to_string(settings_.connect_timeout.count()) + "ms");
    }
    metrics_.upstream_connect_failures->Increment();
    spdlog::warn("event=upstream_connect_failed service={} upstream={} conn={} error=\"{}\"",
                 settings_.service, settings_.target.to_string(), id_, last_error_);
    error_code ignored;
    socket_.close(ignored);
    set_state(State::closed);
    co_return false;
  }
  set_state(State::ready);
  spdlog::info("event=upstream_ready service={} upstream={} conn={} generation={}",
               settings_.service, settings_.target.to_string(), id_, generation_);
  asio::co_spawn(ex_, write_loop(self), asio::detached);
  events_.on_ready(*this);
  if (draining_ && fifo_.empty()) close();
  co_await read_loop();
  co_return true;
}

asio::awaitable<bool> Connection::dial() {
  error_code ec;
  const auto& t = settings_.target;
  if (t.kind == util::Endpoint::Kind::unix_socket) {
    asio::local::stream_protocol::endpoint ep(t.path);
    co_await socket_.async_connect(asio::generic::stream_protocol::endpoint(ep),
                                   asio::redirect_error(use_awaitable, ec));
    if (ec) fail("connect to " + t.to_string() + ": " + ec.message());
    co_return !ec;
  }
  asio::ip::tcp::resolver resolver(ex_);
  auto results = co_await resolver.async_resolve(t.host, std::to_string(t.port),
                                                 asio::redirect_error(use_awaitable, ec));
  if (ec) {
    fail("resolve " + t.host + ": " + ec.message());
    co_return false;
  }
  for (const auto& entry : results) {
    asio::generic::stream_protocol::endpoint ep(entry.endpoint());
    error_code ignored;
    socket_.close(ignored);
    co_await socket_.async_connect(ep, asio::redirect_error(use_awaitable, ec));
    if (!ec) {
      set_nodelay(socket_);
      co_return true;
    }
  }
  fail("connect to " + t.to_string() + ": " + ec.message());
  co_return false;
}

// AUTH (when configured), SELECT (a pool for a database other than 0), CLIENT SETNAME,
// ROLE and PING, pipelined in one write. Only a connection on which ROLE answered
// "master" ever takes work.
asio::awaitable<bool> Connection::handshake() {
  std::string out;
  std::size_t expected = 0;
  if (!settings_.password.empty()) {
    out += settings_.username.empty()
               ? resp::encode_command({"AUTH", settings_.password})
               : resp::encode_command({"AUTH", settings_.username, settings_.password});
    ++expected;
  }
  const bool select = settings_.database != 0;
  if (select) {
    out += resp::encode_command({"SELECT", std::to_string(settings_.database)});
    ++expected;
  }
  out += resp::encode_command({"CLIENT", "SETNAME", "redis-tether"});
  out += resp::encode_command({"ROLE"});
  // PING is refused with -LOADING while the server loads its dataset (ROLE is not), and
  // a loading master must not take work: its replies would be -LOADING errors.
  out += resp::encode_command({"PING"});
  expected += 3;
  error_code ec;
  co_await asio::async_write(socket_, asio::buffer(out), asio::redirect_error(use_awaitable, ec));
  if (ec) {
    fail("handshake write to " + settings_.target.to_string() + ": " + ec.message());
    co_return false;
  }
  std::vector<resp::Value> replies;
  rbuf_.resize(kReadBufferInitial);
  while (replies.size() < expected) {
    std::string_view view(rbuf_.data() + rstart_, rend_ - rstart_);
    auto status = framer_.scan(view);
    if (status == resp::ScanStatus::complete) {
      auto size = framer_.reply().size;
      auto value = resp::decode_reply(view.substr(0, size));
      framer_.reset();
      rstart_ += size;
      if (!value) {
        fail("handshake reply from " + settings_.target.to_string() + " is not RESP2");
        co_return false;
      }
      replies.push_back(std::move(*value));
      continue;
    }
    if (status == resp::ScanStatus::error) {
      fail("handshake reply from " + settings_.target.to_string() +
           " is malformed: " + framer_.error_message());
      co_return false;
    }
    if (rend_ == rbuf_.size()) rbuf_.resize(rbuf_.size() * 2);
    auto n =
        co_await socket_.async_read_some(asio::buffer(rbuf_.data() + rend_, rbuf_.size() - rend_),
                                         asio::redirect_error(use_awaitable, ec));
    if (ec) {
      fail("handshake read from " + settings_.target.to_string() + ": " + ec.message());
      co_return false;
    }
    rend_ += n;
  }
  std::size_t i = 0;
  if (!settings_.password.empty()) {
    const auto& auth = replies[i++];
    if (auth.is_error()) {
      fail("AUTH at " + settings_.target.to_string() + " failed: " + auth.str);
      co_return false;
    }
  }
  if (select) {
    const auto& selected = replies[i++];
    if (selected.is_error()) {
      fail("SELECT " + std::to_string(settings_.database) + " at " + settings_.target.to_string() +
           " failed: " + selected.str);
      co_return false;
    }
  }
  ++i;  // CLIENT SETNAME: a refusal (e.g. by ACL) does not matter
  const auto& role = replies[i];
  if (role.is_error()) {
    fail("ROLE at " + settings_.target.to_string() + " failed: " + role.str);
    co_return false;
  }
  if (role.type != resp::Value::Type::array || role.elements.empty() ||
      role.elements[0].str != "master") {
    fail(settings_.target.to_string() + " is not a master (ROLE says " +
         (role.elements.empty() ? std::string("nothing") : role.elements[0].str) + ")");
    co_return false;
  }
  const auto& ping = replies[i + 1];
  if (ping.is_error()) {
    fail(settings_.target.to_string() + " is not serving yet: " + ping.str);
    co_return false;
  }
  co_return true;
}

void Connection::enqueue(const std::shared_ptr<ReplySink>& sink, std::uint64_t slot,
                         std::string_view bytes) {
  queued_.append(bytes);
  fifo_.push_back(Owed{sink, slot, static_cast<std::uint32_t>(bytes.size())});
  ++queued_count_;
  if (writer_idle_) {
    writer_idle_ = false;  // one wake per batch, however many commands join it
    wake_.cancel();
  }
}

asio::awaitable<void> Connection::write_loop(std::shared_ptr<Connection> self) {
  while (state_ == State::ready && !refused_) {
    if (queued_.empty()) {
      error_code ec;
      writer_idle_ = true;
      co_await wake_.async_wait(asio::redirect_error(use_awaitable, ec));
      writer_idle_ = false;
      continue;
    }
    // The batch joins sent_ until its replies arrive; with no reply owed that is a swap.
    compact_sent();
    const std::size_t start = sent_.size();
    if (start == 0) {
      sent_.swap(queued_);
    } else {
      sent_.append(queued_);
    }
    queued_.clear();
    queued_count_ = 0;
    if (relaying_) fifo_.clear();  // written: no reply is matched to it (relay_to)
    // Keep the buffers from pinning a large burst's memory forever.
    if (queued_.capacity() > kBufferKeepBytes) std::string().swap(queued_);
    writing_active_ = true;
    error_code ec;
    co_await asio::async_write(socket_, asio::buffer(sent_.data() + start, sent_.size() - start),
                               asio::redirect_error(use_awaitable, ec));
    writing_active_ = false;
    if (ec) {
      if (state_ == State::ready) {
        last_error_ = "write to " + settings_.target.to_string() + ": " + ec.message();
        error_code ignored;
        socket_.close(ignored);  // the read loop sees it and fails what is owed
      }
      break;
    }
    if (relaying_) sent_off_ = sent_.size();
    compact_sent();
  }
  (void)self;
}

void Connection::compact_sent() {
  if (writing_active_) return;  // the socket is reading from sent_
  if (sent_off_ == sent_.size()) {
    sent_.clear();
    sent_off_ = 0;
    if (sent_.capacity() > kBufferKeepBytes) std::string().swap(sent_);
  } else if (sent_off_ >= kSentCompactBytes && sent_off_ * 2 >= sent_.size()) {
    sent_.erase(0, sent_off_);
    sent_off_ = 0;
  }
}

asio::awaitable<void> Connection::read_loop() {
  error_code ec;
  util::ChainedReads chain(socket_);  // replies larger than one read reach clients whole
  while (state_ == State::ready) {
    if (rstart_ == rend_) rstart_ = rend_ = 0;
    if (rbuf_.size() - rend_ < kReadChunk) {
      if (rstart_ > 0) {
        std::memmove(rbuf_.data(), rbuf_.data() + rstart_, rend_ - rstart_);
        rend_ -= rstart_;
        rstart_ = 0;
      }
      if (rbuf_.size() - rend_ < kReadChunk) rbuf_.resize(rbuf_.size() * 2);
    }
    const auto buffer = asio::buffer(rbuf_.data() + rend_, rbuf_.size() - rend_);
    std::size_t n = 0;
    if (!chain.read_now(socket_, buffer, n, ec)) {
      n = co_await socket_.async_read_some(buffer, asio::redirect_error(use_awaitable, ec));
      chain.after(n, buffer.size());
    }
    if (ec) break;
    rend_ += n;
    if (!(relaying_ ? relay_frames() : deliver_replies())) break;
    if (draining_ && fifo_.empty()) break;
    // Every reply in: the written requests kept for a resend go (and with them the memory
    // a burst needed), without waiting for the next write.
    if (fifo_.empty()) compact_sent();
    if (rbuf_.size() > 4 * kReadBufferInitial && rstart_ == rend_) {
      rbuf_.resize(kReadBufferInitial);
      rbuf_.shrink_to_fit();
      rstart_ = rend_ = 0;
    }
  }
  if (state_ == State::ready) {
    if (ec && !closing_) {
      last_error_ = "connection to " + settings_.target.to_string() + " lost: " + ec.message();
    }
    const auto target = settings_.target.to_string();
    if (draining_ && fifo_.empty()) {
      spdlog::info("event=upstream_drained service={} upstream={} conn={} generation={}",
                   settings_.service, target, id_, generation_);
    } else if (refused_) {
      spdlog::warn(
          "event=upstream_refused service={} upstream={} conn={} generation={} "
          "resent={} error=\"{}\"",
          settings_.service, target, id_, generation_, retry_.size(), last_error_);
    } else if (closing_) {
      spdlog::info(
          "event=upstream_closed service={} upstream={} conn={} generation={} "
          "inflight={}",
          settings_.service, target, id_, generation_, fifo_.size());
    } else {
      lost_ = true;
      spdlog::warn(
          "event=upstream_lost service={} upstream={} conn={} generation={} "
          "inflight={} error=\"{}\"",
          settings_.service, target, id_, generation_, fifo_.size(), last_error_);
    }
  }
  error_code ignored;
  socket_.close(ignored);
  fail_all();
}

resp::ScanStatus Connection::next_frame(std::string_view& frame) {
  std::string_view view(rbuf_.data() + rstart_, rend_ - rstart_);
  const auto status = framer_.scan(view);
  if (status == resp::ScanStatus::error) {
    last_error_ =
        "malformed reply from " + settings_.target.to_string() + ": " + framer_.error_message();
  } else if (status == resp::ScanStatus::complete) {
    frame = view.substr(0, framer_.reply().size);
    framer_.reset();
    rstart_ += frame.size();
  }
  return status;
}

bool Connection::deliver_replies() {
  for (;;) {
    std::string_view reply;
    const auto status = next_frame(reply);
    if (status != resp::ScanStatus::complete) return status == resp::ScanStatus::need_more;
    if (forwards_pushes_ && reply[0] == '>') {
      if (auto sink = push_sink_.lock()) sink->pushed(reply);
      continue;
    }
    if (fifo_.empty() || fifo_.size() == queued_count_) {
      last_error_ =
          "unexpected reply from " + settings_.target.to_string() + " with no command outstanding";
      return false;
    }
    if (is_refusal(reply)) {
      take_back_refused(reply);
      return false;
    }
    Owed owed = std::move(fifo_.front());
    fifo_.pop_front();
    sent_off_ += owed.bytes;
    if (owed.sink->affinity_conn == id_ && owed.sink->affinity_inflight > 0) {
      --owed.sink->affinity_inflight;
    }
    owed.sink->deliver(owed.slot, reply);
    if (!replied_) {
      replied_ = true;
      events_.on_first_reply(*this);
    }
  }
}

void Connection::relay_to(std::weak_ptr<RelaySink> sink) {
  relaying_ = true;
  relay_sink_ = std::move(sink);
}

bool Connection::relay_frames() {
  for (;;) {
    std::string_view frame;
    const auto status = next_frame(frame);
    if (status != resp::ScanStatus::complete) return status == resp::ScanStatus::need_more;
    auto sink = relay_sink_.lock();
    if (!sink) return false;  // its owner is gone: nobody wants what follows
    sink->relayed(frame);
    if (state_ != State::ready || closing_) return false;
  }
}

void Connection::take_back_refused(std::string_view reply) {
  refused_ = true;
  const auto line = reply.substr(1, reply.find('\r') - 1);
  last_error_ = settings_.target.to_string() + " refused a command: " + std::string(line);
  // Written requests are in sent_ from sent_off_, the rest in queued_; all in FIFO order.
  const std::size_t written = fifo_.size() - queued_count_;
  std::size_t offset = sent_off_;
  retry_.reserve(fifo_.size());
  for (std::size_t i = 0; i < fifo_.size(); ++i) {
    if (i == written) offset = 0;
    auto& o = fifo_[i];
    const std::string& from = i < written ? sent_ : queued_;
    if (o.sink->affinity_conn == id_) o.sink->affinity_inflight = 0;
    retry_.push_back(Unsent{std::move(o.sink), o.slot, from.substr(offset, o.bytes)});
    offset += o.bytes;
  }
  metrics_.commands_resent->Increment(static_cast<double>(retry_.size()));
  fifo_.clear();
  queued_.clear();
  queued_count_ = 0;
}

bool Connection::peer_open() {
  if (state_ != State::ready || !socket_.is_open()) return false;
  char byte;
  const auto n = ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

void Connection::drain() {
  if (draining_) return;
  if (state_ == State::ready) metrics_.upstream_state(metrics::UpstreamState::ready, -1);
  draining_ = true;
  if (state_ == State::ready) metrics_.upstream_state(metrics::UpstreamState::draining, 1);
  if (state_ != State::ready || fifo_.empty()) close();
}

void Connection::close() {
  closing_ = true;
  error_code ignored;
  socket_.close(ignored);
  deadline_.cancel();
  wake_.cancel();
}

void Connection::fail_all() {
  set_state(State::closed);
  wake_.cancel();
  // Refused commands first (they are older), then the newest queued_count_ entries,
  // which were never handed to the socket.
  std::vector<Unsent> unsent = std::move(retry_);
  retry_.clear();
  std::size_t written = fifo_.size() - queued_count_;
  std::size_t offset = 0;
  unsent.reserve(unsent.size() + queued_count_);
  for (std::size_t i = written; i < fifo_.size(); ++i) {
    auto& o = fifo_[i];
    unsent.push_back(Unsent{std::move(o.sink), o.slot, queued_.substr(offset, o.bytes)});
    offset += o.bytes;
  }
  fifo_.resize(written);
  queued_.clear();
  queued_count_ = 0;
  if (!fifo_.empty()) {
    const auto reply = resp::outcome_unknown_error(settings_.target.to_string());
    while (!fifo_.empty()) {
      Owed owed = std::move(fifo_.front());
      fifo_.pop_front();
      if (owed.sink->affinity_conn == id_) owed.sink->affinity_inflight = 0;
      metrics_.error_reply(resp::ErrorCode::outcome_unknown);
      owed.sink->deliver(owed.slot, reply);
    }
  }
  for (auto& u : unsent) {
    if (u.sink->affinity_conn == id_) u.sink->affinity_inflight = 0;
  }
  events_.on_lost(*this, std::move(unsent));
}

}  // namespace tether::upstream
