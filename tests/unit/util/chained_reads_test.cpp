// ChainedReads: after a read that filled its room the next one is synchronous, at most kMax
// in a row; an empty socket or reset() sends the reader back to waiting.
#include "tether/util/chained_reads.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace {

using namespace tether;
using boost::system::error_code;

struct Pair {
  asio::io_context io;
  asio::local::stream_protocol::socket reader{io};
  asio::local::stream_protocol::socket writer{io};
  Pair() { asio::local::connect_pair(reader, writer); }
  void send(const std::string& bytes) { asio::write(writer, asio::buffer(bytes)); }
};

}  // namespace

TEST_CASE("chained reads: only a read that filled its room is followed at once") {
  Pair p;
  util::ChainedReads chain(p.reader);
  char buf[4];
  std::size_t n = 0;
  error_code ec;
  p.send("abcdefgh");
  CHECK_FALSE(chain.read_now(p.reader, asio::buffer(buf), n, ec));  // nothing read yet

  chain.after(2, sizeof buf);  // a short read: the socket was empty then
  CHECK_FALSE(chain.read_now(p.reader, asio::buffer(buf), n, ec));

  chain.after(4, sizeof buf);  // a full one: the rest is read now
  REQUIRE(chain.read_now(p.reader, asio::buffer(buf), n, ec));
  CHECK_FALSE(ec);
  CHECK(std::string(buf, n) == "abcd");
  REQUIRE(chain.read_now(p.reader, asio::buffer(buf), n, ec));
  CHECK(std::string(buf, n) == "efgh");
  // The socket is empty: no read happens, and the next one waits.
  CHECK_FALSE(chain.read_now(p.reader, asio::buffer(buf), n, ec));
  CHECK_FALSE(ec);
  p.send("ijkl");
  CHECK_FALSE(chain.read_now(p.reader, asio::buffer(buf), n, ec));
}

TEST_CASE("chained reads: at most kMax in a row, and reset() ends a chain") {
  Pair p;
  util::ChainedReads chain(p.reader);
  char buf[1];
  std::size_t n = 0;
  error_code ec;
  p.send(std::string(100, 'x'));
  chain.after(1, 1);
  std::size_t chained = 0;
  while (chain.read_now(p.reader, asio::buffer(buf), n, ec))
    ++chained;
  CHECK(chained == util::ChainedReads::kMax);

  chain.after(1, 1);  // the next, asynchronous, read was full again: still no chain
  CHECK_FALSE(chain.read_now(p.reader, asio::buffer(buf), n, ec));
  chain.after(0, 1);  // until a short read ends it
  chain.after(1, 1);
  CHECK(chain.read_now(p.reader, asio::buffer(buf), n, ec));
  chain.reset();
  CHECK_FALSE(chain.read_now(p.reader, asio::buffer(buf), n, ec));
}

TEST_CASE("chained reads: a peer that closed ends the read with eof") {
  Pair p;
  util::ChainedReads chain(p.reader);
  char buf[4];
  std::size_t n = 0;
  error_code ec;
  p.writer.close();
  chain.after(4, 4);
  REQUIRE(chain.read_now(p.reader, asio::buffer(buf), n, ec));
  CHECK(ec == asio::error::eof);
  CHECK_FALSE(chain.read_now(p.reader, asio::buffer(buf), n, ec));
}
