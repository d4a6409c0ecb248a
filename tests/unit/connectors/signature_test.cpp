// Official vectors from the fact sheets (twilio.md: python/ruby/go SDK tests; sendgrid.md:
// sendgrid-python test_eventwebhook.py), plus forged and tampered cases.

#include <gtest/gtest.h>

#include "connectors/sendgrid/sendgrid_signature.hpp"
#include "connectors/twilio/twilio_signature.hpp"
#include "util/crypto.hpp"

namespace billsync::connectors {
namespace {

// ---- Twilio ---------------------------------------------------------------------------------

constexpr std::string_view token = "12345";
constexpr std::string_view url = "https://mycompany.com/myapp.php?foo=1&bar=2";
constexpr std::string_view body_hash =
    "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
constexpr std::string_view json_body = R"({"property": "value", "boolean": true})";

twilio::form_params params() {
    // Deliberately out of order: the signature sorts them.
    return {{"To", "+18005551212"},
            {"CallSid", "CA1234567890ABCDE"},
            {"Digits", "1234"},
            {"From", "+14158675309"},
            {"Caller", "+14158675309"}};
}

TEST(TwilioSignature, StringToSignAndVector) {
    EXPECT_EQ(twilio::signature_base(url, params()),
              "https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+"
              "14158675309Digits1234From+14158675309To+18005551212");
    EXPECT_EQ(twilio::compute_signature(token, url, params()), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    EXPECT_TRUE(twilio::validate_form(token, url, params(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
}

TEST(TwilioSignature, HttpsPortVariants) {
    const std::string_view with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
    EXPECT_EQ(twilio::compute_signature(token, with_port, params()),
              "kvajT1Ptam85bY51eRf/AJRuM3w=");
    EXPECT_TRUE(twilio::validate_form(token, with_port, params(), "kvajT1Ptam85bY51eRf/AJRuM3w="));
    EXPECT_TRUE(twilio::validate_form(token, url, params(), "kvajT1Ptam85bY51eRf/AJRuM3w="));
    // And the portless signature for a request URL that carries the port.
    EXPECT_TRUE(twilio::validate_form(token, with_port, params(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
}

TEST(TwilioSignature, HttpPortVariants) {
    const std::string_view with_port = "http://mycompany.com:80/myapp.php?foo=1&bar=2";
    const std::string_view without = "http://mycompany.com/myapp.php?foo=1&bar=2";
    EXPECT_EQ(twilio::compute_signature(token, with_port, params()),
              "0ZXoZLH/DfblKGATFgpif+LLRf4=");
    EXPECT_TRUE(twilio::validate_form(token, with_port, params(), "0ZXoZLH/DfblKGATFgpif+LLRf4="));
    EXPECT_TRUE(twilio::validate_form(token, without, params(), "0ZXoZLH/DfblKGATFgpif+LLRf4="));
    // An https signature does not validate a plain-http URL (TLS terminated upstream): the URL
    // must come from the configured public URL.
    EXPECT_FALSE(twilio::validate_form(token, without, params(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
}

TEST(TwilioSignature, JsonBody) {
    EXPECT_EQ(util::hex_encode(util::sha256(json_body)), body_hash);
    const auto with_query = std::string(url) + "&bodySHA256=" + std::string(body_hash);
    EXPECT_EQ(twilio::compute_signature(token, with_query, {}), "a9nBmqA0ju/hNViExpshrM61xv4=");
    EXPECT_TRUE(
        twilio::validate_json(token, with_query, json_body, "a9nBmqA0ju/hNViExpshrM61xv4="));
    const auto only_hash = "https://mycompany.com/myapp.php?bodySHA256=" + std::string(body_hash);
    EXPECT_EQ(twilio::compute_signature(token, only_hash, {}), "y77kIzt2vzLz71DgmJGsen2scGs=");
    EXPECT_TRUE(twilio::validate_json(token, only_hash, json_body, "y77kIzt2vzLz71DgmJGsen2scGs="));
    // Port variants apply to JSON too.
    const auto with_port =
        "https://mycompany.com:443/myapp.php?bodySHA256=" + std::string(body_hash);
    EXPECT_TRUE(twilio::validate_json(token, with_port, json_body, "y77kIzt2vzLz71DgmJGsen2scGs="));
}

TEST(TwilioSignature, JsonBodyTampered) {
    const auto with_query = std::string(url) + "&bodySHA256=" + std::string(body_hash);
    // The body does not match its hash, even though the URL signature is right.
    EXPECT_FALSE(twilio::validate_json(token,
                                       with_query,
                                       R"({"property": "evil", "boolean": true})",
                                       "a9nBmqA0ju/hNViExpshrM61xv4="));
    // A JSON body against the plain URL (no bodySHA256) fails.
    EXPECT_FALSE(twilio::validate_json(token, url, json_body, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
    // Hash swapped in the URL: the URL signature no longer matches.
    auto forged = std::string(url) + "&bodySHA256=" +
                  util::hex_encode(util::sha256(R"({"property": "evil", "boolean": true})"));
    EXPECT_FALSE(twilio::validate_json(
        token, forged, R"({"property": "evil", "boolean": true})", "a9nBmqA0ju/hNViExpshrM61xv4="));
}

TEST(TwilioSignature, ForgedAndTampered) {
    EXPECT_FALSE(twilio::validate_form(token, url, params(), "fake_signature"));
    EXPECT_FALSE(twilio::validate_form(token, url, params(), "WRONG SIGNATURE"));
    EXPECT_FALSE(twilio::validate_form(token, url, params(), ""));
    EXPECT_FALSE(twilio::validate_form("54321", url, params(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
    auto tampered = params();
    tampered[2].second = "9999";
    EXPECT_FALSE(twilio::validate_form(token, url, tampered, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
    auto extra = params();
    extra.emplace_back("Body", "STOP");  // a parameter added in transit
    EXPECT_FALSE(twilio::validate_form(token, url, extra, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
    EXPECT_FALSE(twilio::validate_form(token,
                                       "https://mycompany.com/myapp.php?foo=1&bar=3",
                                       params(),
                                       "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
}

TEST(TwilioSignature, QuoteAndPercent27AreInterchangeable) {
    const std::string_view quoted = "https://mycompany.com/myapp.php?name=O'Brien";
    const std::string_view escaped = "https://mycompany.com/myapp.php?name=O%27Brien";
    const auto sig = twilio::compute_signature(token, quoted, params());
    EXPECT_TRUE(twilio::validate_form(token, escaped, params(), sig));
    const auto sig2 = twilio::compute_signature(token, escaped, params());
    EXPECT_TRUE(twilio::validate_form(token, quoted, params(), sig2));
}

TEST(TwilioSignature, RepeatedNamesSortByValueAndUserInfoStays) {
    const twilio::form_params repeated = {{"MediaUrl", "b"}, {"MediaUrl", "a"}};
    EXPECT_EQ(twilio::signature_base("https://x/y", repeated), "https://x/yMediaUrlaMediaUrlb");
    const auto variants = twilio::url_variants("https://user:pass@mycompany.com/x");
    ASSERT_EQ(variants.size(), 2U);
    EXPECT_EQ(variants[1], "https://user:pass@mycompany.com:443/x");
    EXPECT_EQ(twilio::url_variants("https://[::1]:8443/x")[1], "https://[::1]/x");
}

TEST(TwilioSignature, FormParsingAndRequestUrl) {
    const auto form = twilio::parse_form("To=%2B18005551212&Body=Hello+there%21&Empty=&Flag");
    ASSERT_TRUE(form);
    ASSERT_EQ(form->size(), 4U);
    EXPECT_EQ((*form)[0].second, "+18005551212");
    EXPECT_EQ((*form)[1].second, "Hello there!");
    EXPECT_EQ((*form)[2].second, "");
    EXPECT_EQ((*form)[3].first, "Flag");
    EXPECT_FALSE(twilio::parse_form("a=%zz"));
    EXPECT_FALSE(twilio::parse_form("a=%2"));
    EXPECT_EQ(twilio::request_url("https://billsync.example.com/", "/webhooks/twilio/sms?x=1"),
              "https://billsync.example.com/webhooks/twilio/sms?x=1");
    EXPECT_EQ(twilio::request_url("https://proxy.example.com/firm1", "/webhooks/twilio/sms"),
              "https://proxy.example.com/firm1/webhooks/twilio/sms");
}

// ---- SendGrid -------------------------------------------------------------------------------

constexpr std::string_view sg_key =
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+"
    "2fNNRaINXvVpiglSI8eNEc6wEA3F+g==";
constexpr std::string_view sg_timestamp = "1600112502";
constexpr std::string_view sg_payload =
    R"([{"email":"hello@world.com","event":"dropped","reason":"Bounced Address",)"
    R"("sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",)"
    R"("sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.)"
    R"(filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",)"
    R"("smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",)"
    R"("timestamp":1600112492}])"
    "\r\n";
constexpr std::string_view sg_signature =
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+"
    "luQAbPIqHh89M15TluLtEZtM=";

TEST(SendgridSignature, OfficialVector) {
    std::string error;
    const auto v = sendgrid::event_verifier::from_base64_der(sg_key, &error);
    ASSERT_TRUE(v) << error;
    EXPECT_TRUE(v->verify(sg_timestamp, sg_payload, sg_signature));
    EXPECT_TRUE(sendgrid::verify_event_signature(sg_key, sg_timestamp, sg_payload, sg_signature));
}

TEST(SendgridSignature, OfficialNegativeCases) {
    EXPECT_FALSE(
        sendgrid::verify_event_signature("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfj"
                                         "RQrIbsd4SXZkLW6jDutdhXSJCWHw8REntl"
                                         "o7aNDthvj+y7GjUuFDb/R1NGe1OPzpA==",
                                         sg_timestamp,
                                         sg_payload,
                                         sg_signature));
    EXPECT_FALSE(sendgrid::verify_event_signature(sg_key, sg_timestamp, "payload", sg_signature));
    EXPECT_FALSE(sendgrid::verify_event_signature(
        sg_key,
        sg_timestamp,
        sg_payload,
        "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/"
        "U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH3j/"
        "0="));
    EXPECT_FALSE(sendgrid::verify_event_signature(sg_key, "timestamp", sg_payload, sg_signature));
}

TEST(SendgridSignature, ExactBytesAndMalformedInput) {
    // The trailing CR LF is signed: normalising the body breaks verification.
    auto trimmed = std::string(sg_payload.substr(0, sg_payload.size() - 2));
    EXPECT_FALSE(sendgrid::verify_event_signature(sg_key, sg_timestamp, trimmed, sg_signature));
    EXPECT_FALSE(sendgrid::verify_event_signature(sg_key, sg_timestamp, sg_payload, "not base64!"));
    EXPECT_FALSE(sendgrid::verify_event_signature(sg_key, sg_timestamp, sg_payload, ""));
    EXPECT_FALSE(sendgrid::verify_event_signature(sg_key, "", sg_payload, sg_signature));
    EXPECT_FALSE(sendgrid::verify_event_signature(sg_key, sg_timestamp, sg_payload, "AAAA"));
    std::string error;
    EXPECT_FALSE(sendgrid::event_verifier::from_base64_der("%%%", &error));
    EXPECT_FALSE(sendgrid::event_verifier::from_base64_der(util::base64_encode("garbage"), &error));
    EXPECT_FALSE(error.empty());
    // Trailing bytes after the DER key are rejected.
    auto der = *util::base64_decode(sg_key);
    EXPECT_FALSE(sendgrid::event_verifier::from_base64_der(util::base64_encode(der + "x"), &error));
}

}  // namespace
}  // namespace billsync::connectors
