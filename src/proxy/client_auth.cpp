#include "tether/proxy/client_auth.hpp"

#include <algorithm>
#include <cctype>
#include <climits>

#include "tether/resp/error_replies.hpp"

namespace tether::proxy {
namespace {

// The only user: Redis's `default`, whose password `requirepass` sets.
constexpr std::string_view kDefaultUser = "default";

bool equals_ignore_case(std::string_view a, std::string_view upper) {
  return a.size() == upper.size() &&
         std::equal(a.begin(), a.end(), upper.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) == y;
         });
}

// Redis's string2ll as HELLO uses it: an optional '-', digits, no leading zero (but
// "0"), no sign '+', no spaces, within a long long. nullopt otherwise.
std::optional<long long> strict_integer(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  bool negative = s[0] == '-';
  std::string_view digits = negative ? s.substr(1) : s;
  if (digits.empty() ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  if (digits[0] == '0' && (digits.size() > 1 || negative)) return std::nullopt;
  unsigned long long v = 0;
  for (char c : digits) {
    const auto d = static_cast<unsigned long long>(c - '0');
    if (v > (ULLONG_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  if (negative) {
    if (v > static_cast<unsigned long long>(LLONG_MAX) + 1) return std::nullopt;
    return v == static_cast<unsigned long long>(LLONG_MAX) + 1 ? LLONG_MIN
                                                               : -static_cast<long long>(v);
  }
  if (v > static_cast<unsigned long long>(LLONG_MAX)) return std::nullopt;
  return static_cast<long long>(v);
}

}  // namespace

bool constant_time_equal(std::string_view given, std::string_view secret) {
  // Every byte of `given` is compared with a byte of the secret (cycled), so the time
  // depends on the given length only; the lengths are compared the same way.
  unsigned diff = given.size() == secret.size() ? 0U : 1U;
  if (secret.empty()) return given.empty();
  for (std::size_t i = 0; i < given.size(); ++i) {
    diff |= static_cast<unsigned char>(given[i]) ^
            static_cast<unsigned char>(secret[i % secret.size()]);
  }
  return diff == 0;
}

bool credentials_match(std::string_view user, std::string_view password,
                       std::string_view client_password) {
  if (user != kDefaultUser) return false;
  if (client_password.empty()) return true;  // `default` has nopass
  return constant_time_equal(password, client_password);
}

AuthOutcome check_auth(const std::vector<std::string_view>& args,
                       std::string_view client_password) {
  AuthOutcome out;
  if (args.empty()) {
    out.reply = resp::wrong_arity_error("auth");
  } else if (args.size() > 2) {
    out.reply = resp::syntax_error();
  } else if (args.size() == 1 && client_password.empty()) {
    out.reply = resp::auth_without_password_error();
  } else {
    const auto user = args.size() == 2 ? args[0] : kDefaultUser;
    if (credentials_match(user, args.back(), client_password)) {
      out.reply = "+OK\r\n";
      out.authenticated = true;
    } else {
      out.reply = resp::wrongpass_error();
      out.wrong_password = true;
    }
  }
  return out;
}

HelloOutcome evaluate_hello(const std::vector<std::string_view>& args,
                            std::string_view client_password, bool authenticated) {
  HelloOutcome out;
  std::size_t next = 0;
  if (!args.empty()) {
    const auto version = strict_integer(args[0]);
    if (!version) {
      out.error = resp::hello_protover_error();
      return out;
    }
    if (*version < 2 || *version > 3) {
      out.error = resp::noproto_error();
      return out;
    }
    out.version = static_cast<int>(*version);
    next = 1;
  }
  std::optional<std::string_view> name;
  for (std::size_t j = next; j < args.size(); ++j) {
    const std::size_t more = args.size() - 1 - j;
    if (equals_ignore_case(args[j], "AUTH") && more >= 2) {
      if (!credentials_match(args[j + 1], args[j + 2], client_password)) {
        out.error = resp::wrongpass_error();
        out.wrong_password = true;
        return out;
      }
      out.authenticated = true;
      j += 2;
    } else if (equals_ignore_case(args[j], "SETNAME") && more >= 1) {
      if (!valid_client_name(args[j + 1])) {
        out.error = resp::client_name_error();
        return out;
      }
      name = args[j + 1];
      j += 1;
    } else {
      out.error = resp::hello_option_error(args[j]);
      return out;
    }
  }
  if (!authenticated && !out.authenticated) {
    out.error = resp::hello_noauth_error();
    out.noauth = true;
    return out;
  }
  if (name) out.name = std::string(*name);
  return out;
}

bool valid_client_name(std::string_view name) {
  return std::none_of(name.begin(), name.end(), [](unsigned char c) { return c < '!' || c > '~'; });
}

}  // namespace tether::proxy
