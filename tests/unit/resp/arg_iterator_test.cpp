// ArgIterator: arguments of multibulk and inline requests, quoted tokens decoded.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tether/resp/request_scanner.hpp"

using namespace std::string_literals;
using tether::resp::ArgIterator;
using tether::resp::RequestScanner;
using tether::resp::ScanStatus;

namespace {

std::vector<std::string> args_of(const std::string& bytes) {
  RequestScanner s;
  REQUIRE(s.scan(bytes) == ScanStatus::complete);
  ArgIterator it(bytes, s.request());
  std::vector<std::string> out;
  std::string scratch;
  std::string_view arg;
  while (it.next(arg, scratch))
    out.emplace_back(arg);
  CHECK(static_cast<std::int64_t>(out.size()) == s.request().argc);
  return out;
}

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("ArgIterator walks multibulk arguments", "[arg_iterator]") {
  CHECK(args_of("*3\r\n$5\r\nXREAD\r\n$5\r\nBLOCK\r\n$1\r\n0\r\n") == V{"XREAD", "BLOCK", "0"});
  CHECK(args_of("*2\r\n$3\r\nSET\r\n$4\r\na\r\nb\r\n") == V{"SET", "a\r\nb"});
  CHECK(args_of("*3\r\n$1\r\na\r\n$0\r\n\r\n$3\r\n\0\0\0\r\n"s) == V{"a", "", "\0\0\0"s});
  CHECK(args_of("*0\r\n").empty());
  CHECK(args_of("*-1\r\n").empty());
  // Only this request's bytes are read, whatever follows in the buffer.
  CHECK(args_of("*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nQUIT\r\n") == V{"PING"});
  // The bytes Redis skips unchecked are skipped here too.
  CHECK(args_of("*2\rx$4\ryECHOzz$2\r\nhi\r\n") == V{"ECHO", "hi"});
}

TEST_CASE("ArgIterator decodes inline tokens like sdssplitargs", "[arg_iterator]") {
  CHECK(args_of("XREAD block 0 STREAMS s $\r\n") == V{"XREAD", "block", "0", "STREAMS", "s", "$"});
  CHECK(args_of("set \"a b\" 'c d'\n") == V{"set", "a b", "c d"});
  CHECK(args_of("echo \"\\x41\\x4a\\n\\r\\t\\b\\a\\z\\\\\\\"\"\n") ==
        V{"echo", "AJ\n\r\t\b\az\\\""});
  // An invalid \x escape is a plain backslash-x.
  CHECK(args_of("echo \"\\xZZ\"\n") == V{"echo", "xZZ"});
  CHECK(args_of("echo 'a\\'b' 'c\\nd'\n") == V{"echo", "a'b", "c\\nd"});
  CHECK(args_of("echo ab\"c d\"\n") == V{"echo", "abc d"});
  CHECK(args_of("echo \"\" ''\n") == V{"echo", "", ""});
  CHECK(args_of("a\rb\tc\r\n") == V{"a", "b", "c"});
  CHECK(args_of("\r\n").empty());
}

TEST_CASE("ArgIterator out views and scratch", "[arg_iterator]") {
  const std::string bytes = "get plain \"quoted\"\r\n";
  RequestScanner s;
  REQUIRE(s.scan(bytes) == ScanStatus::complete);
  ArgIterator it(bytes, s.request());
  std::string scratch;
  std::string_view arg;
  REQUIRE(it.next(arg, scratch));
  // Plain tokens point into the request bytes, no copy.
  CHECK(arg.data() == bytes.data());
  REQUIRE(it.next(arg, scratch));
  CHECK(arg == "plain");
  REQUIRE(it.next(arg, scratch));
  CHECK(arg == "quoted");
  CHECK(arg.data() == scratch.data());
  CHECK_FALSE(it.next(arg, scratch));
  CHECK_FALSE(it.next(arg, scratch));
}
