// Checked access to a peer's JSON: the wrong type, a missing field or a number out of range is
// a MalformedJson naming the field, never nlohmann's type_error.
#include "qmp/json_fields.h"

#include <gtest/gtest.h>

#include <limits>

#include "kvmrun/qmp_codec.h"

namespace kvmrun {
namespace {

std::string ErrorOf(const std::function<void()>& read) {
  try {
    read();
  } catch (const MalformedJson& e) {
    return e.what();
  }
  return "no error";
}

TEST(JsonFieldsTest, TypedReadsAndDefaults) {
  const nlohmann::json j = {{"s", "x"}, {"b", true},         {"i", -5},        {"u", 7},
                            {"d", 1.5}, {"o", {{"k", "v"}}}, {"a", {"p", "q"}}};
  const JsonFields f(j, "reply");
  EXPECT_EQ(f.String("s"), "x");
  EXPECT_TRUE(f.Bool("b"));
  EXPECT_EQ(f.Int("i"), -5);
  EXPECT_EQ(f.Uint("u"), 7u);
  EXPECT_EQ(f.Number("d", 0, 2), 1.5);
  EXPECT_EQ(f.Number("u", 0, 10), 7.0);
  EXPECT_EQ(f.Object("o").String("k"), "v");
  EXPECT_EQ(f.StringArray("a"), (std::vector<std::string>{"p", "q"}));
  EXPECT_EQ(f.StringOr("missing", "dflt"), "dflt");
  EXPECT_EQ(f.IntOr("missing", 3), 3);
  EXPECT_FALSE(f.BoolOr("missing", false));
}

TEST(JsonFieldsTest, EveryWrongShapeNamesWhereAndWhat) {
  const nlohmann::json j = {{"exited", "yes"}, {"code", "0"},        {"big", 1u << 31},
                            {"neg", -1},       {"list", {1, "two"}}, {"null", nullptr}};
  const JsonFields f(j, "guest-exec-status's reply");
  EXPECT_EQ(ErrorOf([&] { f.Bool("exited"); }),
            "guest-exec-status's reply: field 'exited': expected true or false, got a string");
  EXPECT_NE(ErrorOf([&] { f.Int("code"); }).find("field 'code': expected an integer"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] { f.Int("big", 0, 255); }).find("got 2147483648"), std::string::npos);
  EXPECT_NE(ErrorOf([&] { f.Uint("neg"); }).find("got -1"), std::string::npos);
  EXPECT_NE(ErrorOf([&] { f.StringArray("list"); }).find("'list'[0]"), std::string::npos);
  EXPECT_NE(ErrorOf([&] { f.String("pid"); }).find("field 'pid': missing"), std::string::npos);
  EXPECT_NE(ErrorOf([&] { f.StringOr("null", ""); }).find("got null"), std::string::npos);
  EXPECT_NE(ErrorOf([&] { JsonFields(nlohmann::json::array(), "x"); }).find("expected an object"),
            std::string::npos);
}

TEST(JsonFieldsTest, NumbersAreFiniteAndInRange) {
  nlohmann::json j = ParseBoundedJson(R"({"huge": 1e300, "ok": 2.5})");
  j["inf"] = std::numeric_limits<double>::infinity();  // JSON text cannot say it; a value can
  const JsonFields f(j, "results.json");
  EXPECT_NE(ErrorOf([&] { f.Number("huge", 0, 1e7); }).find("got 1e+300"), std::string::npos);
  EXPECT_NE(ErrorOf([&] { f.Number("inf", 0, 1e7); }), "no error");
  EXPECT_EQ(f.NumberOr("ok", 0, 0, 10), 2.5);
}

}  // namespace
}  // namespace kvmrun
