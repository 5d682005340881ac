// SELECT's argument judged as Redis 7 judges it (the expected words were taken from
// redis-server 7.0; client_session_select_test.cpp checks them against a live one).
#include "tether/resp/db_index.hpp"

#include <catch2/catch.hpp>

using tether::resp::DbIndexStatus;
using tether::resp::parse_db_index;

namespace {

DbIndexStatus judge(std::string_view arg, std::uint32_t databases = 16) {
  std::uint32_t db = 12345;
  const auto status = parse_db_index(arg, databases, db);
  if (status != DbIndexStatus::ok) CHECK(db == 12345);  // untouched
  return status;
}

}  // namespace

TEST_CASE("db index: valid indexes below `databases`", "[db_index]") {
  std::uint32_t db = 99;
  CHECK(parse_db_index("0", 16, db) == DbIndexStatus::ok);
  CHECK(db == 0);
  CHECK(parse_db_index("15", 16, db) == DbIndexStatus::ok);
  CHECK(db == 15);
  CHECK(parse_db_index("1023", 1024, db) == DbIndexStatus::ok);
  CHECK(db == 1023);
}

TEST_CASE("db index: boundary and boundary+1 of every range", "[db_index]") {
  CHECK(judge("16") == DbIndexStatus::out_of_range);
  CHECK(judge("3", 3) == DbIndexStatus::out_of_range);
  CHECK(judge("2", 3) == DbIndexStatus::ok);
  CHECK(judge("-1") == DbIndexStatus::out_of_range);
  CHECK(judge("2147483647") == DbIndexStatus::out_of_range);
  CHECK(judge("-2147483648") == DbIndexStatus::out_of_range);
  CHECK(judge("2147483648") == DbIndexStatus::int_range);
  CHECK(judge("-2147483649") == DbIndexStatus::int_range);
  CHECK(judge("9223372036854775807") == DbIndexStatus::int_range);
  CHECK(judge("-9223372036854775808") == DbIndexStatus::int_range);
  CHECK(judge("9223372036854775808") == DbIndexStatus::not_integer);
  CHECK(judge("99999999999999999999") == DbIndexStatus::not_integer);
}

TEST_CASE("db index: what string2ll refuses is not an integer", "[db_index]") {
  for (const char* arg : {"", "01", "-0", "+1", " 1", "1 ", "1.0", "x", "-", "0x1", "1e3"}) {
    INFO(arg);
    CHECK(judge(arg) == DbIndexStatus::not_integer);
  }
}

TEST_CASE("db index: each status has Redis's words", "[db_index]") {
  using tether::resp::db_index_error;
  CHECK(db_index_error(DbIndexStatus::out_of_range) == "-ERR DB index is out of range\r\n");
  CHECK(db_index_error(DbIndexStatus::not_integer) ==
        "-ERR value is not an integer or out of range\r\n");
  CHECK(db_index_error(DbIndexStatus::int_range) ==
        "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n");
}
