// ChainedReads: after a read that filled its room the next one is synchronous, at most kMax
// in a row; an empty socket or reset() sends the reader back to waiting.
#include "tether/util/chained_reads.hpp"

#include <catch2/catch.hpp>

#include <optional>
#include <string>

namespace {

using namespace tether;

// A connected pair of unix sockets and the chain on its reading end.
struct Chain {
  asio::io_context io;
  asio::local::stream_protocol::socket reader{io};
  asio::local::stream_protocol::socket writer{io};
  std::optional<util::ChainedReads> chain;
  std::string buf;
  std::size_t n = 0;
  boost::system::error_code ec;

  Chain() {
    asio::local::connect_pair(reader, writer);
    chain.emplace(reader);
  }
  void send(const std::string& bytes) { asio::write(writer, asio::buffer(bytes)); }
  // read_now into a room of `room` bytes.
  bool now(std::size_t room) {
    buf.assign(room, '\0');
    return chain->read_now(reader, asio::buffer(buf), n, ec);
  }
  std::string got() const { return buf.substr(0, n); }
};

}  // namespace

TEST_CASE("chained reads: only a read that filled its room is followed at once") {
  Chain c;
  c.send("abcdefgh");
  CHECK_FALSE(c.now(4));  // nothing read yet

  c.chain->after(2, 4);  // a short read: the socket was empty then
  CHECK_FALSE(c.now(4));

  c.chain->after(4, 4);  // a full one: the rest is read now
  REQUIRE(c.now(4));
  CHECK_FALSE(c.ec);
  CHECK(c.got() == "abcd");
  REQUIRE(c.now(4));
  CHECK(c.got() == "efgh");
  // The socket is empty: no read happens, and the next one waits.
  CHECK_FALSE(c.now(4));
  CHECK_FALSE(c.ec);
  c.send("ijkl");
  CHECK_FALSE(c.now(4));
}

TEST_CASE("chained reads: at most kMax in a row, and reset() ends a chain") {
  Chain c;
  c.send(std::string(100, 'x'));
  c.chain->after(1, 1);
  std::size_t chained = 0;
  while (c.now(1))
    ++chained;
  CHECK(chained == util::ChainedReads::kMax);

  c.chain->after(1, 1);  // the next, asynchronous, read was full again: still no chain
  CHECK_FALSE(c.now(1));
  c.chain->after(0, 1);  // until a short read ends it
  c.chain->after(1, 1);
  CHECK(c.now(1));
  c.chain->reset();
  CHECK_FALSE(c.now(1));
}

TEST_CASE("chained reads: a peer that closed ends the read with eof") {
  Chain c;
  c.writer.close();
  c.chain->after(4, 4);
  REQUIRE(c.now(4));
  CHECK(c.ec == asio::error::eof);
  CHECK_FALSE(c.now(4));
}
