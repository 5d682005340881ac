// ControlConnection: a plain request/reply Redis connection for the control plane
// (Sentinel polls and subscriptions, ROLE probes). Not for the data path: one command at
// a time, replies decoded into resp::Value.
//
//   connect(ep, timeout) ──► command({"SENTINEL","MASTER",name}, timeout) ──► Value
//                        └─► read() for pub/sub messages (no timeout)
//
// Every operation reports failure as text for the log; a timeout closes the socket.
// Threading: one coroutine at a time, on one io_context.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "tether/resp/reply_framer.hpp"
#include "tether/resp/value.hpp"
#include "tether/util/asio.hpp"
#include "tether/util/endpoint.hpp"

namespace tether::sentinel {

class ControlConnection {
 public:
  explicit ControlConnection(asio::any_io_executor ex);
  ~ControlConnection();
  ControlConnection(const ControlConnection&) = delete;
  ControlConnection& operator=(const ControlConnection&) = delete;

  // Empty on success, else what failed ("connect 10.0.0.1:26379: Connection refused").
  asio::awaitable<std::string> connect(const util::Endpoint& ep, std::chrono::milliseconds timeout);
  // AUTH when a password is given; empty on success, else the server's error.
  asio::awaitable<std::string> auth(const std::string& username, const std::string& password,
                                    std::chrono::milliseconds timeout);
  // Sends one command and reads its reply; nullopt with `error` set on I/O failure.
  asio::awaitable<std::optional<resp::Value>> command(const std::vector<std::string>& args,
                                                      std::chrono::milliseconds timeout,
                                                      std::string& error);
  // Sends without waiting for a reply (SUBSCRIBE); empty on success.
  asio::awaitable<std::string> send(const std::vector<std::string>& args);
  // Reads the next reply; zero timeout waits for ever (pub/sub).
  asio::awaitable<std::optional<resp::Value>> read(std::chrono::milliseconds timeout,
                                                   std::string& error);
  void close();
  bool is_open() const { return socket_.is_open(); }

 private:
  void arm(std::chrono::milliseconds timeout);

  asio::generic::stream_protocol::socket socket_;
  asio::steady_timer deadline_;
  std::string peer_;
  std::vector<char> buf_;
  std::size_t start_ = 0;
  std::size_t end_ = 0;
  resp::ReplyFramer framer_;
};

}  // namespace tether::sentinel
