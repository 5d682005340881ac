#include "tether/resp/db_index.hpp"

#include <limits>

#include "redis_number.hpp"
#include "tether/resp/error_replies.hpp"

namespace tether::resp {

DbIndexStatus parse_db_index(std::string_view arg, std::uint32_t databases, std::uint32_t& db) {
  std::int64_t v = 0;
  if (!detail::string2ll(arg, v)) return DbIndexStatus::not_integer;
  if (v < std::numeric_limits<std::int32_t>::min() || v > std::numeric_limits<std::int32_t>::max())
    return DbIndexStatus::int_range;
  if (v < 0 || v >= static_cast<std::int64_t>(databases)) return DbIndexStatus::out_of_range;
  db = static_cast<std::uint32_t>(v);
  return DbIndexStatus::ok;
}

std::string db_index_error(DbIndexStatus status) {
  switch (status) {
    case DbIndexStatus::not_integer:
      return not_an_integer_error();
    case DbIndexStatus::int_range:
      return int_range_error();
    case DbIndexStatus::out_of_range:
    case DbIndexStatus::ok:
      break;
  }
  return db_index_out_of_range_error();
}

}  // namespace tether::resp
