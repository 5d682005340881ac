// RequestScanner: malformed requests get Redis's exact words; every limit is checked at
// its boundary and one past it. The first section ports tests/unit/protocol.tcl.
#include <catch2/catch.hpp>

#include <string>

#include "resp_test_util.hpp"
#include "tether/resp/request_scanner.hpp"

using namespace std::string_literals;
using tether::resp::Limits;
using tether::resp::ProtocolError;
using tether::resp::RequestScanner;
using tether::resp::ScanStatus;
using tether::resp::test::check_request_splits;
using tether::resp::test::scan_once;

namespace {

const std::string kInvalidMultibulk = "Protocol error: invalid multibulk length";
const std::string kInvalidBulk = "Protocol error: invalid bulk length";
const std::string kTooBigMbulk = "Protocol error: too big mbulk count string";
const std::string kTooBigBulk = "Protocol error: too big bulk count string";
const std::string kTooBigInline = "Protocol error: too big inline request";
const std::string kUnbalanced = "Protocol error: unbalanced quotes in request";

Limits small_inline(std::size_t n) {
  Limits l;
  l.max_inline_len = n;
  return l;
}

// protocol.tcl's desync regression test: a prefix, then "payload" sent over and over in
// 1 KiB writes (the test sends the literal word) until Redis answers and closes.
std::string desync_error(const std::string& prefix) {
  RequestScanner s;
  std::string buf = prefix;
  while (buf.size() < 200 * 1024) {
    const ScanStatus st = s.scan(buf);
    if (st == ScanStatus::error) return s.error_message();
    REQUIRE(st == ScanStatus::need_more);
    for (int i = 0; i < 147; ++i)
      buf += "payload";
  }
  return "no error";
}

}  // namespace

TEST_CASE("protocol.tcl: malformed requests get Redis's error text", "[request_scanner]") {
  SECTION("Handle an empty query / Negative multibulk length") {
    CHECK(check_request_splits("\r\n*1\r\n$4\r\nPING\r\n").size == 2);
    CHECK(check_request_splits("*-10\r\n*1\r\n$4\r\nPING\r\n").size == 6);
  }
  SECTION("Out of range multibulk length") {
    CHECK(check_request_splits("*3000000000\r\n").error == kInvalidMultibulk);
  }
  SECTION("Wrong multibulk payload header") {
    CHECK(check_request_splits("*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n").error ==
          "Protocol error: expected '$', got 'f'");
  }
  SECTION("Negative multibulk payload length") {
    CHECK(check_request_splits("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n").error == kInvalidBulk);
  }
  SECTION("Out of range multibulk payload length") {
    CHECK(check_request_splits("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n").error ==
          kInvalidBulk);
  }
  SECTION("Non-number multibulk payload length") {
    CHECK(check_request_splits("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n").error == kInvalidBulk);
  }
  SECTION("Multi bulk request not followed by bulk arguments") {
    CHECK(check_request_splits("*1\r\nfoo\r\n").error == "Protocol error: expected '$', got 'f'");
  }
  SECTION("Unbalanced number of quotes") {
    CHECK(check_request_splits("set \"\"\"test-key\"\"\" test-value\r\nping\r\n").error ==
          kUnbalanced);
  }
  SECTION("Protocol desync regression tests #1-#3") {
    CHECK(desync_error("\x00"s) == kTooBigInline);
    CHECK(desync_error("*\x00"s) == kTooBigMbulk);
    CHECK(desync_error("$\x00"s) == kTooBigInline);
  }
}

TEST_CASE("expected '$' reports the byte found, CR and LF shown as spaces", "[request_scanner]") {
  CHECK(check_request_splits("*1\r\n\r\n").error == "Protocol error: expected '$', got ' '");
  CHECK(check_request_splits("*1\r\n\n\r\n").error == "Protocol error: expected '$', got ' '");
  CHECK(check_request_splits("*2\r\n$1\r\na\r\n*1\r\n").error ==
        "Protocol error: expected '$', got '*'");
  CHECK(check_request_splits("*1\r\n\xff\r\n"s).error ==
        "Protocol error: expected '$', got '\xff'");
  // Redis looks at the header only once its '\r' and one more byte are there.
  CHECK(check_request_splits("*1\r\nfoo").status == ScanStatus::need_more);
  CHECK(check_request_splits("*1\r\nfoo\r").status == ScanStatus::need_more);
  RequestScanner s;
  REQUIRE(s.scan("*1\r\nx\r\n") == ScanStatus::error);
  CHECK(s.error() == ProtocolError::expected_dollar);
}

TEST_CASE("unbalanced quotes in inline requests", "[request_scanner]") {
  for (const char* bad : {"GET \"k\r\n", "GET 'k\n", "GET \"a\"b\r\n", "GET 'a'b\n", "\"a\"\"b\"\n",
                          "GET \"abc\\\"\n", "SET k \"v\\\r\n"}) {
    CHECK(check_request_splits(bad).error == kUnbalanced);
  }
  // A closing quote followed by any isspace() byte (even \v) or the end is fine.
  CHECK(check_request_splits("GET \"k\"\v\r\n").argc == 2);
  CHECK(check_request_splits("GET \"k\"").status == ScanStatus::need_more);
  CHECK(check_request_splits("GET \"k\"\n").argc == 2);
}

TEST_CASE("a NUL byte hides every later line end, as strchr() does", "[request_scanner]") {
  const Limits l = small_inline(16);
  for (const std::string& in : {"GET a\0b\r\n"s, "*1\0\r\n"s, "*1\r\n$1\0\r\nx\r\n"s, "\0\n"s}) {
    CHECK(check_request_splits(in, l).status == ScanStatus::need_more);
  }
  CHECK(check_request_splits("GET a\0b\r\n"s + std::string(10, '\n'), l).error == kTooBigInline);
  CHECK(check_request_splits("*1\0\r\n"s + std::string(12, '\r'), l).error == kTooBigMbulk);
  CHECK(check_request_splits("*1\r\n$\0\r\n"s + std::string(14, '\r'), l).error == kTooBigBulk);
}

TEST_CASE("max_inline_len for inline requests: boundary and boundary + 1", "[request_scanner]") {
  const std::size_t n = 32;
  const Limits l = small_inline(n);
  // The line end must be among the first max_inline_len + 1 bytes (a CR counts).
  CHECK(check_request_splits(std::string(n, 'a') + "\n", l).status == ScanStatus::complete);
  CHECK(check_request_splits(std::string(n + 1, 'a') + "\n", l).error == kTooBigInline);
  CHECK(check_request_splits(std::string(n - 1, 'a') + "\r\n", l).status == ScanStatus::complete);
  CHECK(check_request_splits(std::string(n, 'a') + "\r\n", l).error == kTooBigInline);
  CHECK(check_request_splits(std::string(n, 'a'), l).status == ScanStatus::need_more);
  CHECK(check_request_splits(std::string(n + 1, 'a'), l).error == kTooBigInline);

  // Redis's default, 64 KiB, without the quadratic split check.
  const std::size_t def = Limits{}.max_inline_len;
  CHECK(scan_once(std::string(def, 'a') + "\n").status == ScanStatus::complete);
  CHECK(scan_once(std::string(def + 1, 'a') + "\n").error == kTooBigInline);
  CHECK(scan_once(std::string(def, 'a')).status == ScanStatus::need_more);
  CHECK(scan_once(std::string(def + 1, 'a')).error == kTooBigInline);
}

TEST_CASE("max_inline_len for header lines: boundary and boundary + 1", "[request_scanner]") {
  const Limits l = small_inline(4);
  // The '\r' of "*<n>" / "$<n>" must be within max_inline_len bytes of the '*' / '$'.
  CHECK(check_request_splits("*123\r\n", l).status == ScanStatus::need_more);
  CHECK(check_request_splits("*1234\r\n", l).error == kTooBigMbulk);
  CHECK(check_request_splits("*123", l).status == ScanStatus::need_more);
  CHECK(check_request_splits("*1234", l).error == kTooBigMbulk);
  CHECK(check_request_splits("*1\r\n$123\r\n", l).status == ScanStatus::need_more);
  CHECK(check_request_splits("*1\r\n$1234\r\n", l).error == kTooBigBulk);
  CHECK(check_request_splits("*1\r\n$1234", l).error == kTooBigBulk);
  // Without a CR Redis never parses the number, so garbage is "too big", not "invalid".
  CHECK(check_request_splits("*1\r\n$abcdefgh", l).error == kTooBigBulk);

  const std::size_t def = Limits{}.max_inline_len;
  CHECK(scan_once("*" + std::string(def - 1, '1')).status == ScanStatus::need_more);
  CHECK(scan_once("*" + std::string(def, '1')).error == kTooBigMbulk);
  CHECK(scan_once("*1\r\n$" + std::string(def, '1')).error == kTooBigBulk);
}

TEST_CASE("max_bulk_len: boundary and boundary + 1", "[request_scanner]") {
  Limits l;
  l.max_bulk_len = 10;
  const std::string ok = "*2\r\n$3\r\nGET\r\n$10\r\n0123456789\r\n";
  CHECK(check_request_splits(ok, l).status == ScanStatus::complete);
  CHECK(check_request_splits("*2\r\n$3\r\nGET\r\n$11\r\n", l).error == kInvalidBulk);

  // Redis's proto-max-bulk-len default, 512 MiB.
  CHECK(scan_once("*1\r\n$536870912\r\n").status == ScanStatus::need_more);
  CHECK(scan_once("*1\r\n$536870913\r\n").error == kInvalidBulk);
}

TEST_CASE("max_multibulk_len: boundary and boundary + 1", "[request_scanner]") {
  Limits l;
  l.max_multibulk_len = 3;
  CHECK(check_request_splits("*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", l).argc == 3);
  CHECK(check_request_splits("*4\r\n", l).error == kInvalidMultibulk);

  // Redis's INT_MAX.
  CHECK(scan_once("*2147483647\r\n").status == ScanStatus::need_more);
  CHECK(scan_once("*2147483648\r\n").error == kInvalidMultibulk);
}

TEST_CASE("error() names the ProtocolError", "[request_scanner]") {
  const std::pair<std::string, ProtocolError> cases[] = {
      {"*x\r\n", ProtocolError::invalid_multibulk_length},
      {"*1\r\n$x\r\n", ProtocolError::invalid_bulk_length},
      {"*1\r\nx\r\n", ProtocolError::expected_dollar},
      {"\"x\n", ProtocolError::unbalanced_quotes},
      {"*" + std::string(70000, '1'), ProtocolError::too_big_mbulk_count},
      {"*1\r\n$" + std::string(70000, '1'), ProtocolError::too_big_bulk_count},
      {std::string(70000, 'a'), ProtocolError::too_big_inline},
  };
  for (const auto& [in, err] : cases) {
    RequestScanner s;
    REQUIRE(s.scan(in) == ScanStatus::error);
    CHECK(s.error() == err);
  }
}
