#include "tether/util/units.hpp"

#include <array>
#include <charconv>
#include <limits>

namespace tether::util {
namespace {

// Splits "<digits><suffix>"; fails on an empty or overflowing number.
bool split_number(std::string_view text, std::uint64_t& number, std::string_view& suffix) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc{} || ptr == text.data()) return false;
  suffix = text.substr(static_cast<std::size_t>(ptr - text.data()));
  while (!suffix.empty() && suffix.front() == ' ')
    suffix.remove_prefix(1);
  return true;
}

bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return false;
  out = a * b;
  return true;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::uint64_t n = 0;
  std::string_view unit;
  if (!split_number(text, n, unit)) return std::nullopt;
  std::uint64_t ms = 0;
  if (unit == "us") {
    ms = n / 1000;
    if (n != 0 && ms == 0) ms = 1;  // never round a positive duration down to zero
  } else if (unit == "ms" || (unit.empty() && n == 0)) {
    ms = n;
  } else if (unit == "s") {
    if (!checked_mul(n, 1000, ms)) return std::nullopt;
  } else if (unit == "m") {
    if (!checked_mul(n, 60'000, ms)) return std::nullopt;
  } else if (unit == "h") {
    if (!checked_mul(n, 3'600'000, ms)) return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (ms > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::uint64_t n = 0;
  std::string_view unit;
  if (!split_number(text, n, unit)) return std::nullopt;
  std::uint64_t mult = 0;
  if (unit.empty() || unit == "B" || unit == "b") {
    mult = 1;
  } else if (unit == "KiB" || unit == "KB" || unit == "kb" || unit == "k" || unit == "K") {
    mult = 1ULL << 10;
  } else if (unit == "MiB" || unit == "MB" || unit == "mb" || unit == "M" || unit == "m") {
    mult = 1ULL << 20;
  } else if (unit == "GiB" || unit == "GB" || unit == "gb" || unit == "G" || unit == "g") {
    mult = 1ULL << 30;
  } else {
    return std::nullopt;
  }
  std::uint64_t out = 0;
  if (!checked_mul(n, mult, out)) return std::nullopt;
  return out;
}

std::string format_duration(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms % 1000 == 0 && ms != 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string format_size(std::uint64_t bytes) {
  static constexpr std::array<const char*, 4> kUnits{"B", "KiB", "MiB", "GiB"};
  std::size_t u = 0;
  while (u + 1 < kUnits.size() && bytes != 0 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++u;
  }
  return std::to_string(bytes) + kUnits[u];
}

}  // namespace tether::util
