// SELECT's argument, judged as Redis 7 judges it (getIntFromObjectOrReply, then
// selectDb), so that the proxy answers SELECT with Redis's own words.
//
// Threading: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tether::resp {

enum class DbIndexStatus : std::uint8_t {
  ok,
  not_integer,   // not an integer by Redis's string2ll rules, or past the int64 range
  int_range,     // an integer outside the int range
  out_of_range,  // negative, or not below `databases`
};

// Parses `arg`; on ok sets `db`.
DbIndexStatus parse_db_index(std::string_view arg, std::uint32_t databases, std::uint32_t& db);

// The error Redis answers for a status other than ok.
std::string db_index_error(DbIndexStatus status);

}  // namespace tether::resp
