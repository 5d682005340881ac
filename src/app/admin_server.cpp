#include "tether/app/admin_server.hpp"

#include <spdlog/spdlog.h>

#include <stdexcept>

namespace tether::app {
namespace {

using asio::use_awaitable;
using boost::system::error_code;

// A GET line and a few headers; anything longer is not a scraper.
constexpr std::size_t kMaxRequestHead = 8 * 1024;

std::string response(int code, std::string_view status, std::string_view type,
                     std::string_view body) {
  std::string out = "HTTP/1.1 " + std::to_string(code) + " " + std::string(status) + "\r\n";
  out += "Content-Type: " + std::string(type) + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += "Connection: close\r\n\r\n";
  out += body;
  return out;
}

}  // namespace

AdminServer::AdminServer(const util::Endpoint& listen, const metrics::Metrics& metrics,
                         const StatusBoard& status)
    : metrics_(metrics), status_(status), acceptor_(io_) {
  if (listen.kind != util::Endpoint::Kind::tcp) {
    throw std::runtime_error("admin.listen must be a TCP address");
  }
  error_code ec;
  auto address = asio::ip::make_address(listen.host, ec);
  if (ec) throw std::runtime_error("admin.listen " + listen.to_string() + ": " + ec.message());
  asio::ip::tcp::endpoint ep(address, listen.port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("admin.listen " + listen.to_string() + ": " + ec.message());
}

AdminServer::~AdminServer() {
  stop();
}

void AdminServer::start() {
  asio::co_spawn(io_, accept_loop(), asio::detached);
  thread_ = std::thread([this] { io_.run(); });
}

void AdminServer::stop() {
  asio::post(io_, [this] {
    error_code ignored;
    acceptor_.close(ignored);
  });
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

asio::awaitable<void> AdminServer::accept_loop() {
  for (;;) {
    error_code ec;
    auto socket = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) break;
    if (ec) continue;
    asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> AdminServer::serve(asio::ip::tcp::socket socket) {
  std::string head;
  error_code ec;
  co_await asio::async_read_until(socket, asio::dynamic_buffer(head, kMaxRequestHead), "\r\n\r\n",
                                  asio::redirect_error(use_awaitable, ec));
  std::string out;
  if (ec) {
    out = response(400, "Bad Request", "text/plain", "bad request\n");
  } else {
    auto line_end = head.find("\r\n");
    std::string_view line(head.data(), line_end);
    auto is = [&](std::string_view path) {
      return line == "GET " + std::string(path) ||
             line.starts_with("GET " + std::string(path) + " ");
    };
    if (is("/metrics")) {
      out = response(200, "OK", "text/plain; version=0.0.4", metrics_.serialize());
    } else if (is("/health")) {
      const auto h = status_.health();
      out = h.ok ? response(200, "OK", "text/plain", h.text)
                 : response(503, "Service Unavailable", "text/plain", h.text);
    } else if (is("/status")) {
      out = response(200, "OK", "application/json", status_.status_json());
    } else if (line.starts_with("GET ")) {
      out = response(404, "Not Found", "text/plain", "not found\n");
    } else {
      out = response(405, "Method Not Allowed", "text/plain", "only GET\n");
    }
  }
  co_await asio::async_write(socket, asio::buffer(out), asio::redirect_error(use_awaitable, ec));
  socket.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  socket.close(ec);
}

}  // namespace tether::app
