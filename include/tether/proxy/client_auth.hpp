// Client authentication and HELLO, as Redis 7.0 answers them: the decisions only.
//
//   AUTH [user] password ──► check_auth()   ──► AuthOutcome (reply, authenticated?)
//   HELLO [protover [AUTH user pass] [SETNAME name]...]
//                        ──► evaluate_hello() ──► HelloOutcome (error or version + name)
//
// The proxy's own client password (services[].client_password) plays Redis's
// `requirepass`: the only user is `default`. With no password configured the answers
// are those of a Redis without requirepass (the `default` user accepts any password).
// ClientSession applies the outcomes (client_session_auth.cpp); nothing here does I/O,
// so every reply can be tested byte for byte without sockets.
//
// Threading: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tether::proxy {

// True when `given` equals `secret`, in a time that depends on the length of `given`
// only (never on where the two first differ, nor on the secret's length).
bool constant_time_equal(std::string_view given, std::string_view secret);

// Redis's ACL check of the `default` user against `client_password` (empty: none
// configured, the user has `nopass`). `user` is case-sensitive, as ACL user names are.
bool credentials_match(std::string_view user, std::string_view password,
                       std::string_view client_password);

struct AuthOutcome {
  std::string reply;            // the whole reply, "+OK\r\n" or an error
  bool authenticated = false;   // the client is authenticated from now on
  bool wrong_password = false;  // a -WRONGPASS (counted)
};

// AUTH with `args` (the arguments after AUTH).
AuthOutcome check_auth(const std::vector<std::string_view>& args, std::string_view client_password);

struct HelloOutcome {
  // Set when the HELLO fails: the reply. An AUTH option that succeeded before the
  // failing option still authenticates the client (`authenticated`), as in Redis.
  std::string error;
  bool authenticated = false;       // an AUTH option succeeded
  bool wrong_password = false;      // error is -WRONGPASS (counted)
  bool noauth = false;              // error is HELLO's -NOAUTH (counted)
  int version = 0;                  // 2 or 3; 0: no protover given (the protocol stays)
  std::optional<std::string> name;  // SETNAME's name, for a HELLO that succeeds
};

// HELLO with `args` (the arguments after HELLO) from a client that is
// `authenticated` (or needs no password). Options are taken left to right and the first
// bad one ends it, as Redis does: AUTH authenticates at once, SETNAME applies only when
// the whole HELLO succeeds.
HelloOutcome evaluate_hello(const std::vector<std::string_view>& args,
                            std::string_view client_password, bool authenticated);

// CLIENT SETNAME's rule: printable ASCII without spaces (empty clears the name).
bool valid_client_name(std::string_view name);

}  // namespace tether::proxy
