#include "http/client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "http/asio.hpp"

namespace billsync::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

std::string_view simple_response::header_value(std::string_view name) const {
    for (const auto& h : headers) {
        if (iequals(h.name, name)) {
            return h.value;
        }
    }
    return {};
}

simple_response fetch(const std::string& host,
                      std::uint16_t port,
                      const std::string& method,
                      const std::string& target,
                      const std::vector<header>& headers,
                      const std::string& body,
                      std::chrono::milliseconds timeout) {
    simple_response out;
    net::io_context ioc;
    beast::tcp_stream stream(ioc);
    beast::error_code ec;
    const auto address = net::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
    if (ec) {
        out.error = "invalid address " + host;
        return out;
    }
    stream.expires_after(timeout);
    stream.async_connect(net::ip::tcp::endpoint(address, port),
                         [&](beast::error_code e) { ec = e; });
    ioc.run();
    ioc.restart();
    if (ec) {
        out.error = "connect to " + host + ":" + std::to_string(port) + " failed: " + ec.message();
        return out;
    }
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
    req.set(bhttp::field::host, host);
    for (const auto& h : headers) {
        req.set(h.name, h.value);
    }
    req.body() = body;
    req.prepare_payload();
    stream.expires_after(timeout);
    bhttp::async_write(stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
    ioc.run();
    ioc.restart();
    if (ec) {
        out.error = "write failed: " + ec.message();
        return out;
    }
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    stream.expires_after(timeout);
    bhttp::async_read(stream, buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
    ioc.run();
    if (ec) {
        out.error = "read failed: " + ec.message();
        return out;
    }
    auto res = parser.release();
    out.status = res.result_int();
    for (const auto& f : res) {
        out.headers.push_back({std::string(f.name_string()), std::string(f.value())});
    }
    out.body = std::move(res.body());
    beast::error_code ignored;
    stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
    return out;
}

}  // namespace billsync::http
