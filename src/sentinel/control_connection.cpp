#include "control_connection.hpp"

#include <cstring>

namespace tether::sentinel {
namespace {

using asio::use_awaitable;
using boost::system::error_code;

// Control-plane replies are small (SENTINEL MASTER is ~40 fields); the buffer grows if
// one is not.
constexpr std::size_t kInitialBuffer = 4096;

}  // namespace

ControlConnection::ControlConnection(asio::any_io_executor ex)
    : socket_(ex), deadline_(ex), buf_(kInitialBuffer) {}

ControlConnection::~ControlConnection() {
  close();
}

void ControlConnection::close() {
  error_code ignored;
  deadline_.cancel();
  socket_.close(ignored);
}

void ControlConnection::arm(std::chrono::milliseconds timeout) {
  deadline_.cancel();
  if (timeout.count() == 0) return;
  deadline_.expires_after(timeout);
  deadline_.async_wait([this](error_code ec) {
    if (!ec) {
      error_code ignored;
      socket_.close(ignored);
    }
  });
}

asio::awaitable<std::string> ControlConnection::connect(const util::Endpoint& ep,
                                                        std::chrono::milliseconds timeout) {
  close();
  start_ = end_ = 0;
  framer_.reset();
  peer_ = ep.to_string();
  error_code ec;
  arm(timeout);
  if (ep.kind == util::Endpoint::Kind::unix_socket) {
    co_await socket_.async_connect(
        asio::generic::stream_protocol::endpoint(asio::local::stream_protocol::endpoint(ep.path)),
        asio::redirect_error(use_awaitable, ec));
  } else {
    asio::ip::tcp::resolver resolver(socket_.get_executor());
    auto results = co_await resolver.async_resolve(ep.host, std::to_string(ep.port),
                                                   asio::redirect_error(use_awaitable, ec));
    if (!ec) {
      ec = asio::error::host_not_found;
      for (const auto& r : results) {
        error_code ignored;
        socket_.close(ignored);
        co_await socket_.async_connect(asio::generic::stream_protocol::endpoint(r.endpoint()),
                                       asio::redirect_error(use_awaitable, ec));
        if (!ec) break;
      }
    }
  }
  deadline_.cancel();
  if (ec || !socket_.is_open()) {
    close();
    co_return "connect " + peer_ + ": " +
        (ec ? ec.message()
            : std::string("timed out after ") + std::to_string(timeout.count()) + "ms");
  }
  co_return std::string();
}

asio::awaitable<std::string> ControlConnection::auth(const std::string& username,
                                                     const std::string& password,
                                                     std::chrono::milliseconds timeout) {
  if (password.empty()) co_return std::string();
  std::vector<std::string> args{"AUTH"};
  if (!username.empty()) args.push_back(username);
  args.push_back(password);
  std::string error;
  auto reply = co_await command(args, timeout, error);
  if (!reply) co_return error;
  if (reply->is_error()) co_return "AUTH at " + peer_ + " failed: " + reply->str;
  co_return std::string();
}

asio::awaitable<std::string> ControlConnection::send(const std::vector<std::string>& args) {
  auto out = resp::encode_command(args);
  error_code ec;
  co_await asio::async_write(socket_, asio::buffer(out), asio::redirect_error(use_awaitable, ec));
  if (ec) co_return "write to " + peer_ + ": " + ec.message();
  co_return std::string();
}

asio::awaitable<std::optional<resp::Value>> ControlConnection::command(
    const std::vector<std::string>& args, std::chrono::milliseconds timeout, std::string& error) {
  arm(timeout);
  error = co_await send(args);
  if (!error.empty()) {
    close();
    co_return std::nullopt;
  }
  co_return co_await read(timeout, error);
}

asio::awaitable<std::optional<resp::Value>> ControlConnection::read(
    std::chrono::milliseconds timeout, std::string& error) {
  if (timeout.count() != 0) arm(timeout);
  for (;;) {
    std::string_view view(buf_.data() + start_, end_ - start_);
    auto status = framer_.scan(view);
    if (status == resp::ScanStatus::complete) {
      auto size = framer_.reply().size;
      framer_.reset();
      auto value = resp::decode_reply(view.substr(0, size));
      start_ += size;
      if (start_ == end_) start_ = end_ = 0;
      if (timeout.count() != 0) deadline_.cancel();
      if (!value) {
        error = "unreadable reply from " + peer_;
        close();
      }
      co_return value;
    }
    if (status == resp::ScanStatus::error) {
      error = "malformed reply from " + peer_ + ": " + framer_.error_message();
      close();
      co_return std::nullopt;
    }
    if (start_ > 0) {
      std::memmove(buf_.data(), buf_.data() + start_, end_ - start_);
      end_ -= start_;
      start_ = 0;
    }
    if (end_ == buf_.size()) buf_.resize(buf_.size() * 2);
    error_code ec;
    auto n = co_await socket_.async_read_some(asio::buffer(buf_.data() + end_, buf_.size() - end_),
                                              asio::redirect_error(use_awaitable, ec));
    if (ec) {
      error = ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor
                  ? "no reply from " + peer_ + " in time"
                  : "connection to " + peer_ + " lost: " + ec.message();
      close();
      co_return std::nullopt;
    }
    end_ += n;
  }
}

}  // namespace tether::sentinel
