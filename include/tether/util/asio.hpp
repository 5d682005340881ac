// The one way this project includes Boost.Asio.
//
// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>; including
// it first keeps every translation unit compiling whatever it included before.
#pragma once

#include <utility>

#include <boost/asio.hpp>

namespace tether {
namespace asio = boost::asio;
}  // namespace tether
