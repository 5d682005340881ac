#include "tether/util/units.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using tether::util::parse_duration;
using tether::util::parse_size;

TEST_CASE("parse_duration") {
  CHECK(parse_duration("250ms") == 250ms);
  CHECK(parse_duration("5s") == 5000ms);
  CHECK(parse_duration("2m") == 120000ms);
  CHECK(parse_duration("1h") == 3600000ms);
  CHECK(parse_duration("0") == 0ms);
  CHECK(parse_duration("1500us") == 1ms);
  CHECK(parse_duration("1us") == 1ms);
  CHECK_FALSE(parse_duration("5"));
  CHECK_FALSE(parse_duration("s"));
  CHECK_FALSE(parse_duration("-1s"));
  CHECK_FALSE(parse_duration("5 parsecs"));
  CHECK_FALSE(parse_duration("99999999999999999999s"));
  CHECK_FALSE(parse_duration("9223372036854775807h"));
}

TEST_CASE("parse_size") {
  CHECK(parse_size("64KiB") == 65536u);
  CHECK(parse_size("512MiB") == 512ull << 20);
  CHECK(parse_size("1GiB") == 1ull << 30);
  CHECK(parse_size("64mb") == 64ull << 20);
  CHECK(parse_size("100") == 100u);
  CHECK(parse_size("100B") == 100u);
  CHECK_FALSE(parse_size("KiB"));
  CHECK_FALSE(parse_size("1TiB"));
  CHECK_FALSE(parse_size("-1"));
  CHECK_FALSE(parse_size("17179869184GiB"));
  CHECK(tether::util::format_size(65536) == "64KiB");
  CHECK(tether::util::format_size(1000) == "1000B");
  CHECK(tether::util::format_duration(5000ms) == "5s");
  CHECK(tether::util::format_duration(250ms) == "250ms");
}
