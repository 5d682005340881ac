// Durations and byte sizes as operators write them: "250ms", "5s", "2m", "64KiB", "512MiB".
//
// Pure functions; every accumulation checks for overflow.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tether::util {

// Accepts <integer><unit> with unit one of us, ms, s, m, h. A bare "0" is zero.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// Accepts <integer>[unit] with unit one of B, KiB, MiB, GiB (also KB/MB/GB meaning the
// same powers of 1024, as Redis reads "64mb"); a bare integer is bytes.
std::optional<std::uint64_t> parse_size(std::string_view text);

// "1.5s"-style rendering for logs: integral ms below 10 s, else seconds.
std::string format_duration(std::chrono::milliseconds d);
// "64KiB"-style rendering for logs and error replies.
std::string format_size(std::uint64_t bytes);

}  // namespace tether::util
