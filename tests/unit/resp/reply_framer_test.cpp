// ReplyFramer: every RESP2 and RESP3 type, nested and streamed, split at every offset.
#include "tether/resp/reply_framer.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <utility>

#include "resp_test_util.hpp"

using namespace std::string_literals;
using tether::resp::ReplyFramer;
using tether::resp::ScanStatus;
using tether::resp::test::check_reply_splits;
using tether::resp::test::FrameResult;

namespace {

FrameResult complete(std::size_t size, char type) {
  FrameResult r;
  r.status = ScanStatus::complete;
  r.size = size;
  r.type = type;
  return r;
}

// Checks that `reply` is framed whole (type = its first non-attribute type byte), also
// when more replies follow it in the buffer.
void check_whole(const std::string& reply, char type) {
  CHECK(check_reply_splits(reply) == complete(reply.size(), type));
  CHECK(check_reply_splits(reply + "+OK\r\n") == complete(reply.size(), type));
}

}  // namespace

TEST_CASE("RESP2 replies", "[reply_framer]") {
  check_whole("+OK\r\n", '+');
  check_whole("+\r\n", '+');
  check_whole("-ERR unknown command 'x'\r\n", '-');
  check_whole(":0\r\n", ':');
  check_whole(":-9223372036854775808\r\n", ':');
  check_whole("$5\r\nhello\r\n", '$');
  check_whole("$0\r\n\r\n", '$');
  check_whole("$-1\r\n", '$');
  check_whole("$4\r\n\r\n\r\n\r\n", '$');  // CRLF inside a payload is data
  check_whole("$3\r\n\0\0\0\r\n"s, '$');
  check_whole("*0\r\n", '*');
  check_whole("*-1\r\n", '*');
  check_whole("*3\r\n$1\r\na\r\n:1\r\n$-1\r\n", '*');
  check_whole("*2\r\n*2\r\n+a\r\n*0\r\n*1\r\n*1\r\n-E\r\n", '*');
  // A lone CR inside a simple line is part of it (hiredis agrees).
  check_whole("+a\rb\r\n", '+');
}

TEST_CASE("RESP3 simple types", "[reply_framer]") {
  check_whole("_\r\n", '_');
  check_whole(",1.23\r\n", ',');
  check_whole(",-inf\r\n", ',');
  check_whole(",nan\r\n", ',');
  check_whole("#t\r\n", '#');
  check_whole("#f\r\n", '#');
  check_whole("(3492890328409238509324850943850943825024385\r\n", '(');
  check_whole("(-1\r\n", '(');
  check_whole("!21\r\nSYNTAX invalid syntax\r\n", '!');
  check_whole("=15\r\ntxt:Some string\r\n", '=');
  check_whole("=29\r\ntxt:This is a verbatim\nstring\r\n", '=');  // DEBUG PROTOCOL verbatim
}

TEST_CASE("RESP3 aggregates", "[reply_framer]") {
  check_whole("%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n", '%');
  check_whole("%0\r\n", '%');
  check_whole("%1\r\n*2\r\n:1\r\n:2\r\n%1\r\n+k\r\n~1\r\n_\r\n", '%');
  check_whole("~3\r\n+a\r\n+b\r\n#t\r\n", '~');
  check_whole("~0\r\n", '~');
  check_whole(">3\r\n$7\r\nmessage\r\n$3\r\nch1\r\n$2\r\nhi\r\n", '>');
  check_whole(">2\r\n+invalidate\r\n*1\r\n$1\r\nk\r\n", '>');
}

TEST_CASE("attributes are framed with the value they annotate", "[reply_framer]") {
  // DEBUG PROTOCOL attrib, as protocol.tcl reads it raw.
  check_whole(
      "|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n"
      "$39\r\nSome real reply following the attribute\r\n",
      '$');
  check_whole(
      "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n"
      "*2\r\n:2039123\r\n:9543892\r\n",
      '*');
  check_whole("|0\r\n+OK\r\n", '+');
  check_whole("|1\r\n+a\r\n+b\r\n|1\r\n+c\r\n+d\r\n:1\r\n", ':');
  // Inside an aggregate an attribute is not an element: the value after it is.
  check_whole("*2\r\n|1\r\n+k\r\n+v\r\n:1\r\n:2\r\n", '*');
  // An attribute may itself hold attributes.
  check_whole("|1\r\n|1\r\n+x\r\n+y\r\n+k\r\n+v\r\n#t\r\n", '#');
  check_whole(">1\r\n|1\r\n+k\r\n+v\r\n+msg\r\n", '>');
  CHECK(check_reply_splits("|1\r\n+k\r\n+v\r\n").status == ScanStatus::need_more);
  CHECK(check_reply_splits("*1\r\n|1\r\n+k\r\n+v\r\n").status == ScanStatus::need_more);
}

TEST_CASE("streamed strings and aggregates", "[reply_framer]") {
  check_whole("$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n", '$');
  check_whole("$?\r\n;0\r\n", '$');
  check_whole("*?\r\n:1\r\n:2\r\n.\r\n", '*');
  check_whole("*?\r\n.\r\n", '*');
  check_whole("%?\r\n+a\r\n:1\r\n+b\r\n:2\r\n.\r\n", '%');
  check_whole("~?\r\n+a\r\n.\r\n", '~');
  check_whole("*2\r\n*?\r\n:1\r\n.\r\n$?\r\n;1\r\na\r\n;0\r\n", '*');
  check_whole("*?\r\n*?\r\n.\r\n%?\r\n.\r\n.\r\n", '*');
  check_whole("*?\r\n|1\r\n+k\r\n+v\r\n:1\r\n.\r\n", '*');
  check_whole("%?\r\n|1\r\n+k\r\n+v\r\n+key\r\n:1\r\n.\r\n", '%');
  CHECK(check_reply_splits("$?\r\n;4\r\nHell\r\n").status == ScanStatus::need_more);
  CHECK(check_reply_splits("*?\r\n:1\r\n").status == ScanStatus::need_more);
}

TEST_CASE("need_more until the reply is whole", "[reply_framer]") {
  for (const char* partial : {"", "+", "+OK", "+OK\r", "$5\r\nhel", "$5\r\nhello\r", "*2\r\n:1\r\n",
                              "%1\r\n+k\r\n", "$", "$1", "*", ":12"}) {
    CHECK(check_reply_splits(partial).status == ScanStatus::need_more);
  }
}

TEST_CASE("framer reuse: sticky results and reset", "[reply_framer]") {
  const std::string stream = "*2\r\n:1\r\n:2\r\n+OK\r\n$-1\r\n|0\r\n-E\r\n>0\r\n";
  ReplyFramer f;
  std::string_view rest = stream;
  std::string types;
  while (!rest.empty()) {
    REQUIRE(f.scan(rest) == ScanStatus::complete);
    REQUIRE(f.scan(rest) == ScanStatus::complete);  // sticky until reset
    types += f.reply().type;
    CHECK(f.reply().is_error() == (f.reply().type == '-'));
    CHECK(f.reply().is_push() == (f.reply().type == '>'));
    rest.remove_prefix(f.reply().size);
    f.reset();
  }
  CHECK(types == "*+$->");
  REQUIRE(f.scan("x") == ScanStatus::error);
  CHECK(f.scan("x") == ScanStatus::error);
  f.reset();
  CHECK(f.scan("!1\r\nE\r\n") == ScanStatus::complete);
  CHECK(f.reply().is_error());
}

TEST_CASE("large payloads are skipped, not examined", "[reply_framer]") {
  std::string big = "*2\r\n$200000\r\n" + std::string(200000, 'x') + "\r\n:1\r\n";
  ReplyFramer f;
  REQUIRE(f.scan(std::string_view(big).substr(0, 20)) == ScanStatus::need_more);
  REQUIRE(f.scan(std::string_view(big).substr(0, 100000)) == ScanStatus::need_more);
  REQUIRE(f.scan(big) == ScanStatus::complete);
  CHECK(f.reply().size == big.size());
}
