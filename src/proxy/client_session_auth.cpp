// ClientSession: AUTH, HELLO and the client's protocol (RESP2 or RESP3).
//
//   AUTH ............ answered here (client_auth.hpp); never forwarded
//   HELLO [2] ....... options checked here, then a bare "HELLO 2" (or "HELLO") forwarded:
//                     the server's own fields come back, from whichever connection
//                     carries the client's commands
//   HELLO 3 ......... pins the client (route_pinned) for as long as it speaks RESP3:
//                     "HELLO 3" goes to its dedicated connection, and so does every later
//                     command, until HELLO 2 or RESET
//
// Each pinned command remembers the protocol it was sent in (resp3_before). Before one
// is written, flush_pinned() brings the connection to that protocol with a HELLO whose
// reply nobody sees (align_pinned_protocol): a replacement connection after a failover
// gets "HELLO 3" first, so the client's next command runs in RESP3 again; commands that
// follow a RESET on the same connection get "HELLO 2" first.
//
// Threading: as ClientSession.
#include <spdlog/spdlog.h>

#include "tether/proxy/client_auth.hpp"
#include "tether/proxy/client_session.hpp"
#include "tether/resp/error_replies.hpp"
#include "tether/resp/value.hpp"

namespace tether::proxy {
namespace {

// What the proxy forwards for a HELLO, whatever options the client gave.
constexpr std::string_view kHello = "*1\r\n$5\r\nHELLO\r\n";
constexpr std::string_view kHello2 = "*2\r\n$5\r\nHELLO\r\n$1\r\n2\r\n";
constexpr std::string_view kHello3 = "*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n";

// The owner of the commands the proxy adds on a dedicated connection (send_unanswered):
// their replies are dropped. A failed one is logged; one that was cut off by a lost
// connection is not news (the client's commands are settled by the session).
class DiscardReplies final : public upstream::ReplySink {
 public:
  explicit DiscardReplies(std::string service) : service_(std::move(service)) {}
  void deliver(std::uint64_t, std::string_view reply) override {
    if (reply.empty() || (reply[0] != '-' && reply[0] != '!')) return;
    if (reply.starts_with("-OUTCOMEUNKNOWN")) return;
    const auto line = reply.substr(1, reply.find('\r') - 1);
    spdlog::warn("event=added_command_failed service={} reply=\"{}\"", service_, line);
  }

 private:
  std::string service_;
};

// The arguments after the command name (views into `storage`).
std::vector<std::string_view> arguments(std::string_view bytes, const resp::Request& request,
                                        std::vector<std::string>& storage) {
  resp::ArgIterator args(bytes, request);
  std::string scratch;
  std::string_view arg;
  args.next(arg, scratch);  // the name
  while (args.next(arg, scratch))
    storage.emplace_back(arg);
  return {storage.begin(), storage.end()};
}

}  // namespace

bool ClientSession::refuse_unauthenticated(std::string_view name) {
  if (authenticated_ || settings_.client_password.empty()) return false;
  // What Redis 7.0 runs before AUTH (the no-auth command flag).
  if (name == "AUTH" || name == "HELLO" || name == "QUIT" || name == "RESET") return false;
  refuse(resp::ErrorCode::noauth, resp::noauth_error());
  return true;
}

void ClientSession::answer_auth(std::string_view bytes, const resp::Request& request) {
  std::vector<std::string> storage;
  const auto outcome = check_auth(arguments(bytes, request, storage), settings_.client_password);
  if (outcome.authenticated) authenticated_ = true;
  if (outcome.wrong_password) metrics_.error_reply(resp::ErrorCode::wrongpass);
  reply_local(outcome.reply);
}

bool ClientSession::answer_hello(const std::shared_ptr<upstream::ReplySink>& self,
                                 std::string_view bytes, const resp::Request& request) {
  std::vector<std::string> storage;
  const auto outcome =
      evaluate_hello(arguments(bytes, request, storage), settings_.client_password, authenticated_);
  if (outcome.authenticated) authenticated_ = true;
  if (!outcome.error.empty()) {
    if (outcome.wrong_password) metrics_.error_reply(resp::ErrorCode::wrongpass);
    if (outcome.noauth) metrics_.error_reply(resp::ErrorCode::noauth);
    reply_local(outcome.error);
    return false;
  }
  if (outcome.name) client_name_ = *outcome.name;
  const auto forward = outcome.version == 3 ? kHello3 : outcome.version == 2 ? kHello2 : kHello;
  // RESP3 needs the client's own connection; so does every command while it has one.
  if (outcome.version == 3 || resp3_ || pin_requested_ || pin_broken_ || session_) {
    const bool sent = route_pinned(forward, "HELLO");
    if (sent && outcome.version != 0) resp3_ = outcome.version == 3;
    return sent;
  }
  return dispatch_shared(self, forward);
}

bool ClientSession::answer_auth_or_hello(const std::shared_ptr<upstream::ReplySink>& self,
                                         std::string_view bytes, const resp::Request& request,
                                         std::string_view name) {
  // The transaction's connection was lost: -EXECABORT until it ends.
  if (pin_broken_) return route_pinned(bytes, name);
  // Redis would queue it; the proxy cannot (its answer is the proxy's own).
  if (in_multi_) {
    refuse(resp::ErrorCode::not_supported, resp::not_supported_in_multi_error(name));
    return false;
  }
  if (name == "HELLO") return answer_hello(self, bytes, request);
  answer_auth(bytes, request);
  return false;
}

void ClientSession::reset_auth_and_protocol() {
  authenticated_ = settings_.client_password.empty();
  if (!std::exchange(resp3_, false)) return;
  // Commands pipelined behind the RESET still go to the dedicated connection (as RESP2:
  // see align_pinned_protocol) until it is idle and released.
  if (pin_requested_) maybe_unpin();
}

void ClientSession::send_unanswered(std::string_view bytes) {
  if (!discard_) discard_ = std::make_shared<DiscardReplies>(settings_.service);
  pinned_->enqueue(discard_, 0, bytes);
}

void ClientSession::reset_client_state() {
  client_name_.clear();
  tracking_.reset();  // RESET turns tracking off on Redis too
  tracking_changes_.clear();
  db_ = 0;
  db_changes_.clear();  // a SELECT still in flight no longer moves the client
  select_in_multi_.reset();
  end_reply_off();
}

bool ClientSession::forward_reset(std::string_view bytes) {
  // The client's own state ends now, as Redis ends it; the connection's where RESET runs,
  // after the commands before it.
  reset_client_state();
  const bool sent = route_pinned(bytes, "RESET");
  reset_auth_and_protocol();
  return sent;
}

std::string ClientSession::upstream_auth() const {
  const auto& s = pools_.settings();
  if (s.password.empty()) return {};
  return s.username.empty() ? resp::encode_command({"AUTH", s.password})
                            : resp::encode_command({"AUTH", s.username, s.password});
}

void ClientSession::after_pinned_reset() {
  // RESET logged the connection out (as the default user): it logs in again as in its
  // handshake. Database 0, RESP2, no tracking are what the client has now too.
  if (const auto auth = upstream_auth(); !auth.empty()) send_unanswered(auth);
  pinned_resp3_ = false;
  pinned_name_.clear();
}

bool ClientSession::route_tracking(std::string_view bytes, const resp::Request& request) {
  if (pin_broken_) return route_pinned(bytes, "CLIENT");
  if (in_multi_) {
    refuse(resp::ErrorCode::not_supported, resp::not_supported_in_multi_error("CLIENT"));
    return false;
  }
  std::vector<std::string> storage;
  auto args = arguments(bytes, request, storage);
  const auto is = resp::is_word;
  if (is(args[0], "TRACKING")) {
    for (auto arg : args) {
      if (is(arg, "REDIRECT")) {
        refuse(resp::ErrorCode::not_supported, resp::tracking_redirect_error());
        return false;
      }
    }
    if (args.size() > 1 && (is(args[1], "ON") || is(args[1], "OFF"))) {
      // Routed with the state before it (what a new connection is given), then changed.
      auto before = tracking_;
      if (!route_pinned(bytes, "CLIENT")) return false;
      tracking_ = is(args[1], "ON") ? std::make_shared<const std::string>(bytes) : nullptr;
      tracking_changes_[next_slot_ - 1] = {std::move(before), tracking_};
      return true;
    }
  }
  return route_pinned(bytes, "CLIENT");
}

void ClientSession::align_pinned_tracking(const PinnedCommand& command) {
  if (pinned_tracking_) return;
  pinned_tracking_ = true;  // from now on the client's own commands change it
  if (command.tracking_before) send_unanswered(*command.tracking_before);
}

void ClientSession::pushed(std::string_view frame) {
  if (!closed_) emit_unsolicited(frame);
}

void ClientSession::align_pinned_name(const PinnedCommand& command) {
  if (!session_ || pinned_name_ == command.name_before) return;
  send_unanswered(resp::encode_command({"CLIENT", "SETNAME", command.name_before}));
  pinned_name_ = command.name_before;
}

void ClientSession::align_pinned_protocol(const PinnedCommand& command) {
  if (command.resp3_before != pinned_resp3_)
    send_unanswered(command.resp3_before ? kHello3 : kHello2);
  pinned_resp3_ = command.bytes == kHello3   ? true
                  : command.bytes == kHello2 ? false
                                             : command.resp3_before;
}

}  // namespace tether::proxy
