#pragma once

// The one place that names Asio's completion tokens. Boost 1.81 has no default `deferred`
// token for every operation, so tokens are passed explicitly through these aliases.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace billsync {
namespace net = boost::asio;

inline constexpr auto use_awaitable = net::use_awaitable;
// Expected failures come back as values: auto [ec, n] = co_await op(..., as_tuple_awaitable);
inline constexpr auto as_tuple_awaitable = net::as_tuple(net::use_awaitable);
}  // namespace billsync
