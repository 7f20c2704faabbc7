#include "granary/spark_connect/connect_url.h"

#include <gtest/gtest.h>

namespace granary::spark_connect {
namespace {

TEST(ParseConnectUrl, HostAndDefaultPort) {
  auto opts = ParseConnectUrl("sc://127.0.0.1");
  ASSERT_TRUE(opts.ok()) << opts.status().ToString();
  EXPECT_EQ(opts->host, "127.0.0.1");
  EXPECT_EQ(opts->port, 15002);
  EXPECT_FALSE(opts->use_ssl);
  EXPECT_TRUE(opts->token.empty());
  EXPECT_TRUE(opts->headers.empty());
  EXPECT_EQ(opts->Describe(), "sc://127.0.0.1:15002");
}

TEST(ParseConnectUrl, DatabricksFormTokenImpliesTlsAndOtherParamsBecomeHeaders) {
  auto opts = ParseConnectUrl(
      "sc://adb-123.azuredatabricks.net:443/;token=dapi%2Fabc;x-databricks-cluster-id=0123-456;"
      "user_id=alice;user_agent=trainer");
  ASSERT_TRUE(opts.ok()) << opts.status().ToString();
  EXPECT_EQ(opts->host, "adb-123.azuredatabricks.net");
  EXPECT_EQ(opts->port, 443);
  EXPECT_EQ(opts->token, "dapi/abc");
  EXPECT_TRUE(opts->use_ssl);
  EXPECT_EQ(opts->user_id, "alice");
  EXPECT_EQ(opts->user_agent, "trainer");
  ASSERT_EQ(opts->headers.size(), 1u);
  EXPECT_EQ(opts->headers[0].first, "x-databricks-cluster-id");
  EXPECT_EQ(opts->headers[0].second, "0123-456");
}

TEST(ParseConnectUrl, HeaderNamesAreLowerCasedAndSessionIdKept) {
  auto opts = ParseConnectUrl("sc://h:1/;X-Custom=V;session_id=abc;use_ssl=true");
  ASSERT_TRUE(opts.ok()) << opts.status().ToString();
  EXPECT_TRUE(opts->use_ssl);
  EXPECT_EQ(opts->session_id, "abc");
  ASSERT_EQ(opts->headers.size(), 1u);
  EXPECT_EQ(opts->headers[0].first, "x-custom");
  EXPECT_EQ(opts->headers[0].second, "V");
}

TEST(ParseConnectUrl, TokenWithTlsTurnedOffIsRefusedWithoutEchoingTheToken) {
  auto opts = ParseConnectUrl("sc://h:1/;token=secret;use_ssl=false");
  ASSERT_FALSE(opts.ok());
  EXPECT_EQ(opts.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(opts.status().message().find("needs TLS"), std::string::npos);
  EXPECT_EQ(opts.status().message().find("secret"), std::string::npos);
}

TEST(ParseConnectUrl, BadFormsNameTheProblem) {
  struct Case {
    const char* url;
    const char* expected;
  };
  for (const Case& c :
       {Case{"http://h:1", "must start with sc://"}, Case{"sc://:15002", "names no host"},
        Case{"sc://h:x", "port 'x'"}, Case{"sc://h:70000", "port '70000'"},
        Case{"sc://h/db", "has a path"}, Case{"sc://h/;token", "not NAME=VALUE"},
        Case{"sc://h/;a=%zz", "two hex digits"}}) {
    auto opts = ParseConnectUrl(c.url);
    ASSERT_FALSE(opts.ok()) << c.url;
    EXPECT_NE(opts.status().message().find(c.expected), std::string::npos)
        << c.url << ": " << opts.status().message();
  }
}

}  // namespace
}  // namespace granary::spark_connect
