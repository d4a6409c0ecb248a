#include "http/async_client.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>

namespace billsync::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

std::optional<url_parts> parse_url(std::string_view url) {
    auto parsed = boost::urls::parse_absolute_uri(url);
    if (!parsed) {
        return std::nullopt;
    }
    url_parts out;
    out.scheme = std::string(parsed->scheme());
    if (out.scheme != "http" && out.scheme != "https") {
        return std::nullopt;
    }
    out.host = std::string(parsed->encoded_host());
    if (out.host.empty()) {
        return std::nullopt;
    }
    if (parsed->has_port()) {
        out.port = parsed->port_number();
        if (out.port == 0) {
            return std::nullopt;
        }
    } else {
        out.port = out.scheme == "https" ? 443 : 80;
    }
    out.target = std::string(parsed->encoded_path());
    if (out.target.empty()) {
        out.target = "/";
    }
    if (parsed->has_query()) {
        out.target += "?" + std::string(parsed->encoded_query());
    }
    return out;
}

net::awaitable<simple_response> async_fetch(outgoing_request req) {
    simple_response out;
    auto ex = co_await net::this_coro::executor;
    tcp::resolver resolver(ex);
    auto [rec, endpoints] =
        co_await resolver.async_resolve(req.host, std::to_string(req.port), as_tuple_awaitable);
    if (rec) {
        out.error = "cannot resolve " + req.host + ": " + rec.message();
        co_return out;
    }
    beast::tcp_stream stream(ex);
    stream.expires_after(req.timeout);
    auto [cec, ep] = co_await stream.async_connect(endpoints, as_tuple_awaitable);
    if (cec) {
        out.error =
            "connect to " + req.host + ":" + std::to_string(req.port) + " failed: " + cec.message();
        co_return out;
    }
    bhttp::request<bhttp::string_body> msg{bhttp::string_to_verb(req.method), req.target, 11};
    msg.set(bhttp::field::host, req.host);
    msg.set(bhttp::field::user_agent, "billsync");
    for (const auto& h : req.headers) {
        msg.set(h.name, h.value);
    }
    msg.body() = std::move(req.body);
    msg.prepare_payload();
    auto [wec, wn] = co_await bhttp::async_write(stream, msg, as_tuple_awaitable);
    if (wec) {
        out.error = "write failed: " + wec.message();
        co_return out;
    }
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(req.max_response_bytes);
    auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, as_tuple_awaitable);
    if (ec) {
        out.error = ec == beast::error::timeout ? "timed out" : "read failed: " + ec.message();
        co_return out;
    }
    auto res = parser.release();
    out.status = res.result_int();
    for (const auto& f : res) {
        out.headers.push_back({std::string(f.name_string()), std::string(f.value())});
    }
    out.body = std::move(res.body());
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return out;
}

}  // namespace billsync::http
