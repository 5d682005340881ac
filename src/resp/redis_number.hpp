// Number parsing exactly as Redis's string2ll (src/util.c) accepts it, shared by the
// request scanner, the argument iterator and the reply framer.
//
// Rules: 1..20 bytes; an optional '-'; then either the single digit "0" or a digit 1-9
// followed by digits; no '+', no spaces, no leading zeros, no "-0"; overflow-checked
// against the int64 range. Anything else is not a number.
#pragma once

#include <cstdint>
#include <limits>
#include <string_view>

namespace tether::resp::detail {

// LONG_STR_SIZE in Redis: a number string of 21 bytes or more is refused outright.
inline constexpr std::size_t kMaxNumberLen = 20;

inline bool string2ll(std::string_view s, std::int64_t& value) {
  if (s.empty() || s.size() > kMaxNumberLen) return false;
  if (s.size() == 1 && s[0] == '0') {
    value = 0;
    return true;
  }
  std::size_t i = 0;
  const bool negative = s[0] == '-';
  if (negative && ++i == s.size()) return false;
  if (s[i] < '1' || s[i] > '9') return false;
  std::uint64_t v = static_cast<std::uint64_t>(s[i++] - '0');
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c < '0' || c > '9') return false;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (v > kMax / 10) return false;
    v *= 10;
    if (v > kMax - digit) return false;
    v += digit;
  }
  constexpr auto kPosMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (negative) {
    if (v > kPosMax + 1) return false;
    value =
        v == kPosMax + 1 ? std::numeric_limits<std::int64_t>::min() : -static_cast<std::int64_t>(v);
  } else {
    if (v > kPosMax) return false;
    value = static_cast<std::int64_t>(v);
  }
  return true;
}

}  // namespace tether::resp::detail
