// ReplyFramer: desynchronised streams are errors; max_reply_bulk_len and kMaxDepth at
// their boundary and one past it.
#include <catch2/catch.hpp>

#include <string>

#include "resp_test_util.hpp"
#include "tether/resp/reply_framer.hpp"

using namespace std::string_literals;
using tether::resp::Limits;
using tether::resp::ReplyFramer;
using tether::resp::ScanStatus;
using tether::resp::test::check_reply_splits;
using tether::resp::test::frame_once;

namespace {

std::string nested(char type, std::size_t depth, const std::string& leaf) {
  std::string s;
  for (std::size_t i = 0; i < depth; ++i)
    s += std::string(1, type) + "1\r\n";
  return s + leaf;
}

}  // namespace

TEST_CASE("malformed replies are errors with a reason", "[reply_framer]") {
  const std::pair<std::string, std::string> cases[] = {
      {"x\r\n", "unknown type byte 'x'"},
      {"\0\r\n"s, "unknown type byte 0x00"},
      {"*1\r\n@\r\n", "unknown type byte '@'"},
      {"$5\r\nhelloXY", "bulk payload not followed by CRLF"},
      {"$5\r\nhello\rX", "bulk payload not followed by CRLF"},
      {"!1\r\nEEE", "bulk payload not followed by CRLF"},
      {":abc\r\n", "invalid integer"},
      {":01\r\n", "invalid integer"},
      {":+1\r\n", "invalid integer"},
      {":\r\n", "invalid integer"},
      {"#x\r\n", "invalid boolean"},
      {"#\r\n", "invalid boolean"},
      {"_x\r\n", "invalid null"},
      {"(12a\r\n", "invalid big number"},
      {"(\r\n", "invalid big number"},
      {"$-2\r\n", "invalid length"},
      {"$+1\r\n", "invalid length"},
      {"$ 1\r\n", "invalid length"},
      {"!-1\r\n", "invalid length"},
      {"=-1\r\n", "invalid length"},
      {"!?\r\n", "invalid length"},
      {"*-2\r\n", "invalid aggregate count"},
      {"%-1\r\n", "invalid aggregate count"},
      {">-1\r\n", "invalid aggregate count"},
      {">?\r\n", "invalid aggregate count"},
      {"|?\r\n", "invalid aggregate count"},
      {"*1a\r\n", "invalid aggregate count"},
      {"%4611686018427387904\r\n", "invalid aggregate count"},
      {"|4611686018427387904\r\n", "invalid aggregate count"},
      {".\r\n", "end marker outside a streamed aggregate"},
      {"*1\r\n.\r\n", "end marker outside a streamed aggregate"},
      {"*?\r\n.x\r\n", "invalid end marker"},
      {"%?\r\n+a\r\n.\r\n", "streamed map ended after a key"},
      {";1\r\na\r\n", "';' chunk outside a streamed string ';'"},
      {"$?\r\n+a\r\n", "expected ';' chunk in streamed string '+'"},
      {"$?\r\n;-1\r\n", "invalid length"},
      {"*?\r\n|1\r\n+a\r\n+b\r\n.\r\n", "attribute not followed by a value"},
      {"*?\r\n|0\r\n.\r\n", "attribute not followed by a value"},
      {"*" + std::string(21, '1'), "line too long"},
      {":" + std::string(21, '1'), "line too long"},
      {"$1\rX\r\n", "invalid length"},
  };
  for (const auto& [in, why] : cases) {
    INFO(tether::resp::test::show(in));
    CHECK(check_reply_splits(in).error == why);
  }
}

TEST_CASE("max_reply_bulk_len: boundary and boundary + 1", "[reply_framer]") {
  Limits l;
  l.max_reply_bulk_len = 10;
  const std::string ten = "0123456789";
  CHECK(check_reply_splits("$10\r\n" + ten + "\r\n", l).status == ScanStatus::complete);
  CHECK(check_reply_splits("$11\r\n", l).error == "bulk length above max_reply_bulk_len");
  CHECK(check_reply_splits("!10\r\n" + ten + "\r\n", l).status == ScanStatus::complete);
  CHECK(check_reply_splits("!11\r\n", l).error == "bulk length above max_reply_bulk_len");
  CHECK(check_reply_splits("=10\r\n" + ten + "\r\n", l).status == ScanStatus::complete);
  CHECK(check_reply_splits("=11\r\n", l).error == "bulk length above max_reply_bulk_len");
  CHECK(check_reply_splits("$?\r\n;10\r\n" + ten + "\r\n;0\r\n", l).status == ScanStatus::complete);
  CHECK(check_reply_splits("$?\r\n;11\r\n", l).error == "bulk length above max_reply_bulk_len");
  // Simple lines (status, error, double, big number) share the limit.
  CHECK(check_reply_splits("+" + ten + "\r\n", l).status == ScanStatus::complete);
  CHECK(check_reply_splits("-" + ten + "x\r\n", l).error == "line too long");
  CHECK(check_reply_splits("," + ten + "x", l).error == "line too long");

  // The default: Redis's proto-max-bulk-len, 512 MiB.
  CHECK(frame_once("$536870912\r\n").status == ScanStatus::need_more);
  CHECK(frame_once("$536870913\r\n").error == "bulk length above max_reply_bulk_len");
}

TEST_CASE("nesting depth: kMaxDepth and kMaxDepth + 1", "[reply_framer]") {
  constexpr std::size_t kMax = ReplyFramer::kMaxDepth;
  for (const char type : {'*', '~', '>'}) {
    const std::string ok = nested(type, kMax, ":1\r\n");
    CHECK(check_reply_splits(ok).size == ok.size());
    CHECK(check_reply_splits(nested(type, kMax + 1, ":1\r\n")).error ==
          "nesting deeper than kMaxDepth");
  }
  // Maps, attributes and streamed aggregates take a level each too.
  const std::string maps = nested('%', kMax - 1, "*?\r\n.\r\n:1\r\n");
  CHECK(frame_once(maps).status == ScanStatus::need_more);  // values of the maps missing
  CHECK(frame_once(nested('%', kMax, "*?\r\n")).error == "nesting deeper than kMaxDepth");
  CHECK(frame_once(nested('|', kMax, "|1\r\n")).error == "nesting deeper than kMaxDepth");
  CHECK(frame_once(nested('*', kMax, "|1\r\n")).error == "nesting deeper than kMaxDepth");
}

TEST_CASE("aggregate counts near the int64 range", "[reply_framer]") {
  CHECK(frame_once("*9223372036854775807\r\n:1\r\n").status == ScanStatus::need_more);
  CHECK(frame_once("%4611686018427387903\r\n").status == ScanStatus::need_more);
  CHECK(frame_once("*9223372036854775808\r\n").error == "invalid aggregate count");
}
