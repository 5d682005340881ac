// RequestScanner: well-formed requests, pipelining and Redis's lenient framing details.
// Every input is checked split at every byte offset (see resp_test_util.hpp).
#include "tether/resp/request_scanner.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "resp_test_util.hpp"

using namespace std::string_literals;
using tether::resp::Limits;
using tether::resp::RequestScanner;
using tether::resp::ScanStatus;
using tether::resp::test::check_request_splits;
using tether::resp::test::ScanResult;

namespace {

ScanResult complete(std::size_t size, std::int64_t argc, std::string name, bool is_inline) {
  ScanResult r;
  r.status = ScanStatus::complete;
  r.size = size;
  r.argc = argc;
  r.name = std::move(name);
  r.is_inline = is_inline;
  return r;
}

}  // namespace

TEST_CASE("multibulk requests are framed with name and argc", "[request_scanner]") {
  const std::string get = "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
  CHECK(check_request_splits(get) == complete(get.size(), 2, "GET", false));

  const std::string set = "*3\r\n$3\r\nset\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
  CHECK(check_request_splits(set) == complete(set.size(), 3, "set", false));

  const std::string ping = "*1\r\n$4\r\nPING\r\n";
  CHECK(check_request_splits(ping) == complete(ping.size(), 1, "PING", false));

  // Empty arguments and binary payloads (CR, LF, NUL inside a bulk are data).
  const std::string bin = "*3\r\n$3\r\nSET\r\n$0\r\n\r\n$5\r\na\r\n\0b\r\n"s;
  CHECK(check_request_splits(bin) == complete(bin.size(), 3, "SET", false));

  const std::string empty_name = "*1\r\n$0\r\n\r\n";
  CHECK(check_request_splits(empty_name) == complete(empty_name.size(), 1, "", false));
}

TEST_CASE("a request is framed at the start of a pipeline", "[request_scanner]") {
  const std::string one = "*1\r\n$4\r\nPING\r\n";
  const std::string pipeline = one + "*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n" + "GET x\r\n";
  CHECK(check_request_splits(pipeline) == complete(one.size(), 1, "PING", false));

  // Consume requests one after the other with one scanner and reset().
  RequestScanner s;
  std::string_view rest = pipeline;
  std::vector<std::string> names;
  while (!rest.empty()) {
    REQUIRE(s.scan(rest) == ScanStatus::complete);
    names.emplace_back(s.request().name);
    rest.remove_prefix(s.request().size);
    s.reset();
  }
  CHECK(names == std::vector<std::string>{"PING", "ECHO", "GET"});
}

TEST_CASE("requests that carry no command are consumed silently", "[request_scanner]") {
  // protocol.tcl "Handle an empty query" and "Negative multibulk length".
  CHECK(check_request_splits("\r\n") == complete(2, 0, "", true));
  CHECK(check_request_splits("\n") == complete(1, 0, "", true));
  CHECK(check_request_splits("   \t \r\n") == complete(7, 0, "", true));
  CHECK(check_request_splits("*-10\r\n") == complete(6, 0, "", false));
  CHECK(check_request_splits("*0\r\n") == complete(4, 0, "", false));
  CHECK(check_request_splits("*-1\r\n") == complete(5, 0, "", false));
  // Extreme but valid string2ll values are still "no arguments".
  CHECK(check_request_splits("*-9223372036854775808\r\n") == complete(23, 0, "", false));
}

TEST_CASE("the bytes after a CR and after a payload are skipped unchecked", "[request_scanner]") {
  // Redis skips the byte after the header's '\r' and the 2 bytes after a payload
  // without looking at them; we must frame exactly as it does.
  const std::string odd_header = "*1\rX$4\rYPING\r\n";
  CHECK(check_request_splits(odd_header) == complete(odd_header.size(), 1, "PING", false));
  const std::string odd_trailer = "*2\r\n$4\r\nECHOxx$1\r\naZZ";
  CHECK(check_request_splits(odd_trailer) == complete(odd_trailer.size(), 2, "ECHO", false));
}

TEST_CASE("header numbers follow string2ll", "[request_scanner]") {
  CHECK(check_request_splits("*1\r\n$0\r\n\r\n").status == ScanStatus::complete);
  // Leading zeros, '+', spaces and "-0" are not numbers to Redis.
  for (const char* bad : {"*01\r\n", "*+1\r\n", "* 1\r\n", "*1 \r\n", "*-0\r\n", "*\r\n", "*-\r\n",
                          "*1a\r\n", "*9223372036854775808\r\n", "*123456789012345678901\r\n"}) {
    CHECK(check_request_splits(bad).error == "Protocol error: invalid multibulk length");
  }
  for (const char* bad : {"*1\r\n$01\r\nx\r\n", "*1\r\n$+1\r\nx\r\n", "*1\r\n$-0\r\n",
                          "*1\r\n$\r\n", "*1\r\n$ 1\r\n", "*1\r\n$1x\r\n"}) {
    CHECK(check_request_splits(bad).error == "Protocol error: invalid bulk length");
  }
}

TEST_CASE("inline requests", "[request_scanner]") {
  CHECK(check_request_splits("GET k\r\n") == complete(7, 2, "GET", true));
  CHECK(check_request_splits("PING\n") == complete(5, 1, "PING", true));
  CHECK(check_request_splits("  set  a   b  \r\n") == complete(16, 3, "set", true));
  // A CR in the middle of the line is a separator, not a line end.
  CHECK(check_request_splits("a\rb\r\n") == complete(5, 2, "a", true));
  // Only the CR right before the LF is dropped.
  CHECK(check_request_splits("a\r\r\n") == complete(4, 1, "a", true));
  // '\v' and '\f' separate leading blanks but do not end an unquoted token.
  CHECK(check_request_splits("\va\vb c\n") == complete(7, 2, "a\vb", true));
  // Quoted tokens, escapes, and a quote opening mid-token.
  CHECK(check_request_splits("\"G\\x45T\" \"a b\"\r\n") == complete(16, 2, "GET", true));
  CHECK(check_request_splits("'it\\'s' x\n") == complete(10, 2, "it's", true));
  CHECK(check_request_splits("ab\"c d\"\n") == complete(8, 1, "abc d", true));
  CHECK(check_request_splits("\"\"\n") == complete(3, 1, "", true));
  // An inline line may start with '$' or anything but '*'.
  CHECK(check_request_splits("$3\r\n") == complete(4, 1, "$3", true));
  // Only the first request of a pipeline.
  CHECK(check_request_splits("PING\r\nPING\r\n") == complete(6, 1, "PING", true));
}

TEST_CASE("a quoted inline name longer than kMaxNameLen is truncated", "[request_scanner]") {
  const std::string long_name(100, 'A');
  const std::string quoted = "\"" + long_name + "\" x\r\n";
  const ScanResult r = check_request_splits(quoted);
  REQUIRE(r.status == ScanStatus::complete);
  CHECK(r.name == long_name.substr(0, RequestScanner::kMaxNameLen));
  // Unquoted names are views into the buffer and never truncated.
  const std::string plain = long_name + " x\r\n";
  CHECK(check_request_splits(plain).name == long_name);
}

TEST_CASE("need_more until the request is whole", "[request_scanner]") {
  for (const char* partial : {"", "*", "*2", "*2\r", "*2\r\n", "*2\r\n$3\r\nGET",
                              "*2\r\n$3\r\nGET\r\n$1\r\nk\r", "GET k", "GET k\r", "*1\r\nfoo"}) {
    CHECK(check_request_splits(partial).status == ScanStatus::need_more);
  }
}

TEST_CASE("scan after complete or error is sticky until reset", "[request_scanner]") {
  RequestScanner s;
  REQUIRE(s.scan("PING\r\n") == ScanStatus::complete);
  CHECK(s.scan("PING\r\n") == ScanStatus::complete);
  s.reset();
  REQUIRE(s.scan("*x\r\n") == ScanStatus::error);
  CHECK(s.scan("*x\r\n") == ScanStatus::error);
  s.reset();
  CHECK(s.scan("*1\r\n$4\r\nPING\r\n") == ScanStatus::complete);
  CHECK(s.request().name == "PING");
}

TEST_CASE("large declared payloads are skipped without being examined", "[request_scanner]") {
  std::string big = "*2\r\n$3\r\nSET\r\n$100000\r\n";
  big += std::string(100000, 'x');
  big += "\r\n";
  RequestScanner s;
  REQUIRE(s.scan(std::string_view(big).substr(0, 30)) == ScanStatus::need_more);
  REQUIRE(s.scan(std::string_view(big).substr(0, 50000)) == ScanStatus::need_more);
  REQUIRE(s.scan(big) == ScanStatus::complete);
  CHECK(s.request().size == big.size());
  CHECK(s.request().argc == 2);
}
