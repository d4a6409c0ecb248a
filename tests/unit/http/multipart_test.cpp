#include "http/multipart.hpp"

#include <gtest/gtest.h>

#include "sim/sendgrid_simulator.hpp"

namespace billsync::http {
namespace {

std::string form(const std::string& boundary) {
    return "--" + boundary +
           "\r\n"
           "Content-Disposition: form-data; name=\"from\"\r\n"
           "\r\n"
           "Ann <ann@example.com>\r\n"
           "--" +
           boundary +
           "\r\n"
           "Content-Disposition: form-data; name=\"attachment1\"; filename=\"a \\\"b\\\".txt\"\r\n"
           "Content-Type: text/plain\r\n"
           "\r\n"
           "line one\r\n"
           "--not-the-boundary\r\n"
           "line three\r\n"
           "--" +
           boundary + "--\r\n";
}

TEST(multipart, parses_fields_files_and_content_that_looks_like_a_delimiter) {
    const auto r = parse_multipart(form("xYzZY"), "xYzZY");
    ASSERT_TRUE(r.ok()) << r.error;
    ASSERT_EQ(r.parts.size(), 2u);
    EXPECT_EQ(r.parts[0].name, "from");
    EXPECT_EQ(r.parts[0].data, "Ann <ann@example.com>");
    EXPECT_EQ(r.parts[1].name, "attachment1");
    EXPECT_EQ(r.parts[1].filename, "a \"b\".txt");
    EXPECT_EQ(r.parts[1].content_type, "text/plain");
    EXPECT_EQ(r.parts[1].data, "line one\r\n--not-the-boundary\r\nline three");
    ASSERT_NE(r.find("from"), nullptr);
    EXPECT_EQ(r.find("missing"), nullptr);
}

TEST(multipart, boundary_from_content_type_and_from_the_body) {
    EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=xYzZY"), "xYzZY");
    EXPECT_EQ(multipart_boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b'c\""),
              "a b'c");
    EXPECT_EQ(multipart_boundary("application/json"), std::nullopt);
    EXPECT_EQ(multipart_boundary("multipart/form-data"), std::nullopt);
    EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=\"bad<char\""), std::nullopt);
    EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=" + std::string(71, 'a')),
              std::nullopt);
    EXPECT_EQ(leading_boundary(form("xYzZY")), "xYzZY");
    EXPECT_EQ(leading_boundary("[{\"event\":\"open\"}]"), std::nullopt);
    EXPECT_EQ(leading_boundary("--no-line-end"), std::nullopt);
}

TEST(multipart, preamble_and_epilogue_are_ignored) {
    const auto body = "preamble text\r\n" + form("b1") + "epilogue";
    const auto r = parse_multipart(body, "b1");
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.parts.size(), 2u);
}

TEST(multipart, malformed_bodies_are_rejected_with_a_reason) {
    const auto good = form("xYzZY");
    // Truncated: no closing delimiter.
    EXPECT_EQ(parse_multipart(good.substr(0, good.size() - 12), "xYzZY").error,
              "missing closing multipart delimiter");
    EXPECT_EQ(parse_multipart(good, "other").error, "no multipart delimiter");
    EXPECT_EQ(parse_multipart("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--", "b").error,
              "part without Content-Disposition");
    EXPECT_EQ(
        parse_multipart("--b\r\nContent-Disposition: attachment\r\n\r\nx\r\n--b--", "b").error,
        "malformed Content-Disposition");
    EXPECT_EQ(parse_multipart("--b\r\nno colon here\r\n\r\nx\r\n--b--", "b").error,
              "malformed part header line");
    EXPECT_EQ(parse_multipart("--b\r\nContent-Disposition: form-data; name=\"x\"", "b").error,
              "unterminated part headers");
    EXPECT_EQ(parse_multipart("--bX\r\n", "b").error, "malformed multipart delimiter line");
    EXPECT_EQ(parse_multipart(good, "bad\nboundary").error, "invalid multipart boundary");
    EXPECT_FALSE(
        parse_multipart("--b\r\nContent-Disposition: form-data; name=\"x\r\n\r\nx\r\n--b--", "b")
            .ok());
}

TEST(multipart, limits_bound_parts_and_header_size) {
    std::string many;
    for (int i = 0; i < 5; ++i) {
        many += "--b\r\nContent-Disposition: form-data; name=\"f" + std::to_string(i) +
                "\"\r\n\r\nv\r\n";
    }
    many += "--b--\r\n";
    multipart_limits l;
    l.max_parts = 4;
    EXPECT_EQ(parse_multipart(many, "b", l).error, "too many multipart parts");
    l.max_parts = 5;
    EXPECT_TRUE(parse_multipart(many, "b", l).ok());
    l.max_part_header_bytes = 10;
    EXPECT_EQ(parse_multipart(many, "b", l).error, "part headers too large");
}

TEST(multipart, reads_what_the_sendgrid_simulator_posts) {
    const auto body = simulators::sendgrid_simulator::inbound_form(
        "xYzZY", "Ann <ann@example.com>", "billing@firm.test", "Re: invoice", "Paid.\r\n", "H: v");
    const auto r = parse_multipart(body, "xYzZY");
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.find("text")->data, "Paid.\r\n");
    EXPECT_EQ(r.find("subject")->data, "Re: invoice");
    EXPECT_EQ(r.find("headers")->data, "H: v");
}

}  // namespace
}  // namespace billsync::http
