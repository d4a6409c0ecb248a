#include "util/html.hpp"

#include <gtest/gtest.h>

namespace billsync::util {
namespace {

TEST(html_escape, markup_and_quotes_become_references_and_the_rest_passes) {
    EXPECT_EQ(html_escape(R"(<b class="x">Brown & 'Sons'</b>)"),
              "&lt;b class=&quot;x&quot;&gt;Brown &amp; &#39;Sons&#39;&lt;/b&gt;");
    EXPECT_EQ(html_escape("Café 1,234.56 $"), "Café 1,234.56 $");
    EXPECT_EQ(html_escape(""), "");
}

}  // namespace
}  // namespace billsync::util
