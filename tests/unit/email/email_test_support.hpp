#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "http/asio.hpp"

namespace billsync::testing {

// Runs one coroutine to completion on `ioc` and returns its result.
template <class T>
T run(net::io_context& ioc, net::awaitable<T> op) {
    auto f = net::co_spawn(ioc, std::move(op), net::use_future);
    ioc.restart();
    ioc.run();
    return f.get();
}

}  // namespace billsync::testing
