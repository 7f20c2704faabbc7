#include "granary/common/json.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "granary/testing/test_seed.h"

namespace granary {
namespace {

namespace bj = boost::json;

std::string ErrorOf(std::string_view text, JsonParseOptions options = {}) {
  auto v = ParseJson(text, options);
  if (v.ok()) return "(parsed)";
  EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
  return v.status().message();
}

// The 137-byte number that crashed RapidJSON 1.1's full-precision parser (SIGSEGV).
std::string CrashNumber() {
  std::string s = "0.9995999999999";
  s.append(137 - s.size() - 6, '1');
  s.append("5e-444");
  return s;
}

TEST(ParseJson, ReadsEveryKindOfValue) {
  auto v = ParseJson(R"({"a": [1, -2, 1.5, "x\u00e9\n", true, false, null],
                         "b": {"c": 18446744073709551615}})");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  const bj::array& a = v->at("a").as_array();
  ASSERT_EQ(a.size(), 7u);
  EXPECT_EQ(a[0].as_int64(), 1);
  EXPECT_EQ(a[1].as_int64(), -2);
  EXPECT_EQ(a[2].as_double(), 1.5);
  EXPECT_EQ(JsonStringView(a[3].as_string()), "x\xc3\xa9\n");
  EXPECT_TRUE(a[4].as_bool());
  EXPECT_FALSE(a[5].as_bool());
  EXPECT_TRUE(a[6].is_null());
  EXPECT_EQ(v->at("b").at("c").as_uint64(), UINT64_MAX);
  ASSERT_NE(JsonMember(*v, "b"), nullptr);
  EXPECT_EQ(JsonMember(*v, "z"), nullptr);
  EXPECT_EQ(JsonMember(a[0], "b"), nullptr);
}

TEST(ParseJson, TheNumberThatCrashedRapidJsonIsReadAsZero) {
  const std::string number = CrashNumber();
  ASSERT_EQ(number.size(), 137u);
  for (const std::string& text :
       {number, "[" + number + "]", R"({"entities": {"customer_id": [)" + number + "]}}"}) {
    auto v = ParseJson(text);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
  }
  auto v = ParseJson(number);
  ASSERT_TRUE(v->is_double());
  EXPECT_EQ(v->as_double(), 0.0);  // 1e-444 is below the smallest subnormal: rounds to zero
  auto negative = ParseJson("-" + number);
  EXPECT_TRUE(std::signbit(negative->as_double()));
}

TEST(ParseJson, NumbersAreCorrectlyRounded) {
  // Long decimal expansions and values near halfway points, where a fast conversion is off by
  // one ULP; the reference is std::from_chars on the same text.
  const char* cases[] = {"2.2250738585072011e-308",
                         "4.9406564584124654e-324",
                         "9007199254740993",
                         "0.1000000000000000055511151231257827",
                         "1.7976931348623157e308",
                         "7.038531e-26",
                         "2.4703282292062327e-324",
                         "89255.0e-22",
                         "123456789012345678901234567890e-10"};
  for (const char* text : cases) {
    double expected = 0;
    std::from_chars(text, text + std::strlen(text), expected);
    auto v = ParseJson(text);
    ASSERT_TRUE(v.ok()) << text << ": " << v.status().ToString();
    EXPECT_EQ(JsonNumberAsDouble(*v), expected) << text;
  }
  // Random 17-digit decimals against from_chars.
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE(testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 2000; ++i) {
    std::string text = "0." + std::to_string(rng() % 100000000000000000ULL + 1) + "e" +
                       std::to_string(static_cast<int>(rng() % 600) - 300);
    double expected = 0;
    std::from_chars(text.data(), text.data() + text.size(), expected);
    auto v = ParseJson(text);
    ASSERT_TRUE(v.ok()) << text;
    ASSERT_EQ(v->as_double(), expected) << text;
  }
}

TEST(ParseJson, NumbersBeyondADoubleAreAnError) {
  EXPECT_EQ(ErrorOf("[1e400]"), "line 1, column 7: the number 1e400 is too large for a double");
  EXPECT_EQ(ErrorOf("-1e99999"), "line 1, column 9: the number -1e99999 is too large for a double");
}

TEST(ParseJson, DeepNestingIsAnErrorThatSaysSo) {
  // 200,000 '[' overflowed RapidJSON's stack.
  const std::string deep(200'000, '[');
  EXPECT_EQ(ErrorOf(deep),
            "line 1, column 65: arrays and objects are nested more than 64 deep; Granary reads "
            "at most 64 levels");
  std::string objects;
  for (int i = 0; i < 100'000; ++i) objects += R"({"a":)";
  EXPECT_NE(ErrorOf(objects).find("nested more than 64 deep"), std::string::npos);
  // 64 levels are read.
  const std::string ok = std::string(64, '[') + std::string(64, ']');
  EXPECT_TRUE(ParseJson(ok).ok());
  EXPECT_FALSE(ParseJson("[" + ok + "]").ok());
  JsonParseOptions shallow;
  shallow.max_depth = 2;
  EXPECT_TRUE(ParseJson("[[1]]", shallow).ok());
  EXPECT_FALSE(ParseJson("[[[1]]]", shallow).ok());
}

TEST(ParseJson, WhatIsNotJsonIsAnErrorWithLineAndColumn) {
  EXPECT_EQ(ErrorOf("{"), "line 1, column 2: the text ends too early");
  EXPECT_EQ(ErrorOf(""), "line 1, column 1: the text ends too early");
  EXPECT_EQ(ErrorOf("{\n \"a\": }"), "line 2, column 7: unexpected '}'");
  EXPECT_TRUE(ParseJson(" [1] \n").ok());
  EXPECT_EQ(ErrorOf("[1] x"), "line 1, column 5: text after the end of the JSON value");
  EXPECT_EQ(ErrorOf("[1,]"), "line 1, column 4: unexpected ']'");
  EXPECT_EQ(ErrorOf("// c\n1"), "line 1, column 1: unexpected '/'");
  EXPECT_EQ(ErrorOf("[01]"), "line 1, column 3: unexpected '1'");
  EXPECT_EQ(ErrorOf("[\"a\tb\"]"),
            "line 1, column 4: control character 0x09 (escape it in a string, as \\n or \\u00XX)");
  EXPECT_EQ(ErrorOf(R"({"a": 1, "a": 2})"),
            "line 1, column 16: the key \"a\" appears twice in the object that ends here");
}

TEST(ParseJson, StringsMustBeUtf8) {
  EXPECT_EQ(ErrorOf("[\"a\xff\"]"), "line 1, column 4: byte 0xff is not valid UTF-8");
  EXPECT_NE(ErrorOf("[\"\xc3\"]"), "(parsed)");          // truncated sequence
  EXPECT_NE(ErrorOf("[\"\xed\xa0\x80\"]"), "(parsed)");  // an encoded surrogate
  EXPECT_NE(ErrorOf("[\"\\ud800\"]"), "(parsed)");       // a lone escaped surrogate
  EXPECT_TRUE(ParseJson("[\"\\ud83d\\ude00 \xf0\x9f\x98\x80\"]").ok());
}

TEST(ParseJson, NanAndInfinityAreNotJsonUnlessAllowed) {
  EXPECT_EQ(ErrorOf("[NaN]"),
            "line 1, column 2: NaN and Infinity are not JSON; send null or a finite number");
  EXPECT_EQ(ErrorOf("[-Infinity]"),
            "line 1, column 3: NaN and Infinity are not JSON; send null or a finite number");
  JsonParseOptions python;
  python.allow_non_finite = true;
  auto v = ParseJson(R"({"a": [NaN, Infinity,-Infinity ], "b": NaN, "c": "NaN"})", python);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  const bj::array& a = v->at("a").as_array();
  EXPECT_TRUE(std::isnan(a[0].as_double()));
  EXPECT_EQ(a[1].as_double(), INFINITY);
  EXPECT_EQ(a[2].as_double(), -INFINITY);
  EXPECT_TRUE(std::isnan(v->at("b").as_double()));
  EXPECT_EQ(JsonStringView(v->at("c").as_string()), "NaN");
  EXPECT_TRUE(ParseJson("NaN", python).ok());
  // Glued to other text (RapidJSON read past its buffer on "Infe2" and "NaNe299").
  for (const char* text : {"[Infe2]", "[NaNe299]", "[NaN1]", "[Infinity.5]", "[1NaN]", "[-NaN]",
                           "{NaN: 1}", "[\"a\" NaN]", "[Inf]", "[nan]"}) {
    auto bad = ParseJson(text, python);
    EXPECT_FALSE(bad.ok()) << text;
    EXPECT_FALSE(ParseJson(text).ok()) << text;
  }
  EXPECT_EQ(
      ErrorOf("[Infe2]", python),
      "line 1, column 2: not JSON: NaN, Infinity and -Infinity are read only as whole values");
  EXPECT_EQ(
      ErrorOf("[NaNe299]", python),
      "line 1, column 2: not JSON: NaN, Infinity and -Infinity are read only as whole values");
  EXPECT_EQ(ErrorOf("[Infe2]"),
            "line 1, column 2: NaN and Infinity are not JSON; send null or a finite number");
  // Inside strings, with escaped quotes before, the tokens are text.
  auto s = ParseJson(R"(["a\"NaN", "\\", NaN])", python);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(JsonStringView(s->as_array()[0].as_string()), "a\"NaN");
  EXPECT_TRUE(std::isnan(s->as_array()[2].as_double()));
  // Errors after a substituted token keep the original text's position.
  EXPECT_EQ(ErrorOf("[NaN,\n  x]", python), "line 2, column 3: unexpected 'x'");
}

TEST(ParseJson, EveryPrefixOfADocumentIsAnErrorNotACrash) {
  const std::string text =
      R"({"features": ["risk:score"], "entities": {"customer_id": [1, 2.5e3, -0]},
          "s": "\u00e9\ud83d\ude00", "n": [NaN, true, null]})";
  JsonParseOptions python;
  python.allow_non_finite = true;
  for (size_t n = 0; n < text.size(); ++n) {
    EXPECT_FALSE(ParseJson(text.substr(0, n), python).ok()) << n;
  }
  EXPECT_TRUE(ParseJson(text, python).ok());
}

TEST(JsonWriter, WritesCompactAndIndentedJson) {
  JsonWriter w;
  w.StartObject();
  w.Key("a\"b");
  w.StartArray();
  w.Int64(-3);
  w.Uint64(UINT64_MAX);
  w.Double(1);
  w.Double(0.1);
  w.Double(1e300);
  w.Double(NAN);
  w.Bool(true);
  w.Null();
  w.String(std::string_view("x\n\x01\\", 4));
  w.EndArray();
  w.Key("e");
  w.StartObject();
  w.EndObject();
  w.EndObject();
  EXPECT_EQ(w.str(),
            R"({"a\"b":[-3,18446744073709551615,1.0,0.1,1e+300,null,true,null,"x\n\u0001\\"],)"
            R"("e":{}})");
  auto back = ParseJson(w.str());
  ASSERT_TRUE(back.ok());
  JsonWriter again;
  again.Value(*back);
  EXPECT_EQ(again.str(), w.str());

  JsonWriter pretty(2);
  pretty.StartObject();
  pretty.Key("a");
  pretty.StartArray();
  pretty.Int(1);
  pretty.Int(2);
  pretty.EndArray();
  pretty.Key("b");
  pretty.StartArray();
  pretty.EndArray();
  pretty.EndObject();
  EXPECT_EQ(pretty.str(), "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": []\n}");
}

}  // namespace
}  // namespace granary
