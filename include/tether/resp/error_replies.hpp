// Every error reply redis-tether writes to a client, in one place.
//
// Each starts with a stable code (the first word), which clients match on and which
// labels the redis_tether_error_replies_total metric. README lists them all.
//
//   code            when                                                    connection
//   ERR (Protocol)  malformed request, in Redis's own words                 closed after
//   ERR (maxclients) limits.max_clients reached, Redis's words              closed after
//   NOMASTER        held past hold.timeout with no upstream                 stays open
//   HOLDFULL        held bytes would exceed hold.max_bytes                  stays open
//   OUTCOMEUNKNOWN  upstream lost after the command was written             stays open
//   NOTSUPPORTED    command needs a dedicated connection                    stays open
//   DENIED          command would change the Redis topology                 stays open
//   ERR (SELECT)    a bad SELECT index, Redis's words (not counted)         stays open
//   NOAUTH          a command before AUTH (services[].client_password)      stays open
//   WRONGPASS       AUTH with a wrong password, Redis's words               stays open
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tether::resp {

enum class ErrorCode : std::uint8_t {
  protocol,
  max_clients,
  nomaster,
  holdfull,
  outcome_unknown,
  not_supported,
  denied,
  execabort,       // a transaction whose dedicated connection was lost
  dedicated_full,  // pool.max_dedicated dedicated connections in use
  noauth,          // a command before AUTH (services[].client_password)
  wrongpass,       // AUTH or HELLO AUTH with a wrong user or password
  kCount,
};

// The code word as it appears on the wire and in metric labels.
constexpr std::string_view error_code_name(ErrorCode c) {
  switch (c) {
    case ErrorCode::protocol:
      return "ERR";
    case ErrorCode::max_clients:
      return "ERR";
    case ErrorCode::nomaster:
      return "NOMASTER";
    case ErrorCode::holdfull:
      return "HOLDFULL";
    case ErrorCode::outcome_unknown:
      return "OUTCOMEUNKNOWN";
    case ErrorCode::not_supported:
      return "NOTSUPPORTED";
    case ErrorCode::denied:
      return "DENIED";
    case ErrorCode::execabort:
      return "EXECABORT";
    case ErrorCode::dedicated_full:
      return "DEDICATEDFULL";
    case ErrorCode::noauth:
      return "NOAUTH";
    case ErrorCode::wrongpass:
      return "WRONGPASS";
    case ErrorCode::kCount:
      break;
  }
  return "ERR";
}

// Metric label for the code (distinguishes the two ERR kinds).
constexpr std::string_view error_code_label(ErrorCode c) {
  switch (c) {
    case ErrorCode::protocol:
      return "PROTOCOL";
    case ErrorCode::max_clients:
      return "MAXCLIENTS";
    default:
      return error_code_name(c);
  }
}

namespace detail {
inline std::string line(std::string_view code, std::string_view text) {
  std::string out;
  out.reserve(code.size() + text.size() + 4);
  out.append("-").append(code).append(" ").append(text).append("\r\n");
  return out;
}
}  // namespace detail

// `message` is RequestScanner::error_message(): "Protocol error: ...".
inline std::string protocol_error(std::string_view message) {
  return detail::line("ERR", message);
}

inline std::string max_clients_error() {
  return detail::line("ERR", "max number of clients reached");
}

inline std::string nomaster_error(std::string_view service, std::string_view timeout,
                                  std::string_view reason) {
  std::string t = "no upstream for service '";
  t.append(service).append("' within ").append(timeout).append(": ").append(reason);
  return detail::line("NOMASTER", t);
}

inline std::string holdfull_error(std::string_view service, std::string_view max_bytes) {
  std::string t = "requests held for service '";
  t.append(service).append("' exceed ").append(max_bytes).append(" while no upstream is available");
  return detail::line("HOLDFULL", t);
}

inline std::string outcome_unknown_error(std::string_view upstream) {
  std::string t = "upstream ";
  t.append(upstream).append(" was lost after the command was sent; it may or may not have run");
  return detail::line("OUTCOMEUNKNOWN", t);
}

// `command` is upper-cased by the caller.
inline std::string not_supported_error(std::string_view command) {
  std::string t = "'";
  t.append(command).append(
      "' needs a dedicated upstream connection, which this redis-tether version does not "
      "provide");
  return detail::line("NOTSUPPORTED", t);
}

// A SUBSCRIBE-family command inside MULTI (Redis 7.0 would queue it, and EXEC would make
// the connection a subscriber unseen by the proxy).
inline std::string subscribe_in_transaction_error(std::string_view command) {
  std::string t = "'";
  t.append(command).append(
      "' inside MULTI is not supported by redis-tether: subscribe before MULTI or after EXEC");
  return detail::line("NOTSUPPORTED", t);
}

// A command of the service's deny list (services[].deny_commands; by default those that
// would change the topology under the Sentinels: SHUTDOWN, REPLICAOF, SLAVEOF, FAILOVER).
// MONITOR inside MULTI (Redis 7.0 would queue it, and EXEC would turn the connection into
// a feed unseen by the proxy).
inline std::string monitor_in_transaction_error() {
  return detail::line("NOTSUPPORTED",
                      "'MONITOR' inside MULTI is not supported by redis-tether: monitor before "
                      "MULTI or after EXEC");
}

// CLIENT TRACKING ... REDIRECT <id>: the id would have to name an upstream connection.
inline std::string tracking_redirect_error() {
  return detail::line("NOTSUPPORTED",
                      "'CLIENT TRACKING' with REDIRECT is not supported by redis-tether: use "
                      "RESP3 (HELLO 3) and tracking without REDIRECT");
}

inline std::string denied_error(std::string_view command) {
  std::string t = "'";
  t.append(command).append("' is refused by redis-tether (services[].deny_commands)");
  return detail::line("DENIED", t);
}

// SYNC, PSYNC: always refused.
inline std::string replication_denied_error(std::string_view command) {
  std::string t = "'";
  t.append(command).append(
      "' is refused by redis-tether: it would turn a shared connection into a replication "
      "stream");
  return detail::line("DENIED", t);
}

// A transaction (MULTI ... EXEC, or WATCH ...) whose dedicated connection died: EXEC gets
// this, as do the commands sent before EXEC or DISCARD ends the transaction. Redis's own
// code, so clients treat it as an aborted transaction.
inline std::string transaction_lost_error(std::string_view command) {
  std::string t = "Transaction discarded because its connection to the master was lost";
  t.append(command == "EXEC" ? " (e.g. a failover); none of it ran" : "; EXEC or DISCARD ends it");
  return detail::line("EXECABORT", t);
}

// EXEC of a transaction in which a command was refused (by Redis or by the proxy), in
// Redis's own words: none of it runs.
inline std::string exec_after_errors_error() {
  return detail::line("EXECABORT", "Transaction discarded because of previous errors.");
}

inline std::string dedicated_full_error(std::string_view service, std::size_t max) {
  std::string t = "all ";
  t.append(std::to_string(max))
      .append(" dedicated upstream connections of service '")
      .append(service)
      .append("' are in use (pool.max_dedicated); try again later");
  return detail::line("DEDICATEDFULL", t);
}

// Client authentication and HELLO (services[].client_password): Redis 7.0's own replies,
// byte for byte.
inline std::string noauth_error() {
  return detail::line("NOAUTH", "Authentication required.");
}

inline std::string hello_noauth_error() {
  return detail::line("NOAUTH",
                      "HELLO must be called with the client already authenticated, otherwise "
                      "the HELLO AUTH <user> <pass> option can be used to authenticate the "
                      "client and select the RESP protocol version at the same time");
}

inline std::string wrongpass_error() {
  return detail::line("WRONGPASS", "invalid username-password pair or user is disabled.");
}

// AUTH <password> with no services[].client_password: Redis without requirepass.
inline std::string auth_without_password_error() {
  return detail::line("ERR",
                      "AUTH <password> called without any password configured for the default "
                      "user. Are you sure your configuration is correct?");
}

// `command` lower-case, as Redis names it in this message (e.g. "auth", "client|setname").
inline std::string wrong_arity_error(std::string_view command) {
  std::string t = "wrong number of arguments for '";
  t.append(command).append("' command");
  return detail::line("ERR", t);
}

inline std::string syntax_error() {
  return detail::line("ERR", "syntax error");
}

inline std::string noproto_error() {
  return detail::line("NOPROTO", "unsupported protocol version");
}

inline std::string hello_protover_error() {
  return detail::line("ERR", "Protocol version is not an integer or out of range");
}

// `option` as the client sent it; line breaks become spaces, as Redis writes them.
inline std::string hello_option_error(std::string_view option) {
  std::string t = "Syntax error in HELLO option '";
  for (char c : option)
    t.push_back(c == '\r' || c == '\n' ? ' ' : c);
  t.append("'");
  return detail::line("ERR", t);
}

inline std::string client_name_error() {
  return detail::line("ERR", "Client names cannot contain spaces, newlines or special characters.");
}

// AUTH, HELLO or CLIENT inside MULTI: Redis would queue it, but the proxy answers it
// itself. Like any refused command it makes the transaction's EXEC fail (-EXECABORT).
inline std::string not_supported_in_multi_error(std::string_view command) {
  std::string t = "'";
  t.append(command).append(
      "' inside MULTI: redis-tether answers it itself and cannot queue it in the transaction");
  return detail::line("NOTSUPPORTED", t);
}

// SELECT with a bad index, in Redis's own words (the database stays as it was).
inline std::string select_arity_error() {
  return detail::line("ERR", "wrong number of arguments for 'select' command");
}
inline std::string not_an_integer_error() {
  return detail::line("ERR", "value is not an integer or out of range");
}
inline std::string int_range_error() {
  return detail::line("ERR",
                      "value is out of range, value must between -2147483648 and 2147483647");
}
// A negative index, or one past services[].pool.databases.
inline std::string db_index_out_of_range_error() {
  return detail::line("ERR", "DB index is out of range");
}

inline std::string while_subscribed_error(std::string_view command) {
  std::string t = "'";
  t.append(command);
  t.append(
      "' on a connection with subscriptions or MONITOR (or an unconfirmed UNSUBSCRIBE) is "
      "not supported by redis-tether: unsubscribe or RESET first");
  return detail::line("NOTSUPPORTED", t);
}

// A command a RESP2 subscriber may not send, in Redis's own words; `command` lower-case.
inline std::string subscriber_context_error(std::string_view command) {
  std::string t = "Can't execute '";
  t.append(command);
  t.append(
      "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in "
      "this context");
  return detail::line("ERR", t);
}

inline std::string request_too_large_error(std::string_view limit) {
  std::string t = "Protocol error: request larger than the query buffer limit (";
  t.append(limit).append(")");
  return detail::line("ERR", t);
}

}  // namespace tether::resp
