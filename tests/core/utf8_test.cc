// UTF-8 read strictly: each well-formed character once, every malformed sequence refused.
#include "core/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace kvmrun {
namespace {

TEST(Utf8Test, DecodesEachLengthAndSaysHowLong) {
  const std::string text = "a\xc2\xa1\xe3\x80\x80\xf0\x9f\x90\xa7";
  const std::pair<std::uint32_t, std::size_t> expected[] = {
      {'a', 1}, {0xa1, 2}, {0x3000, 3}, {0x1f427, 4}};
  std::size_t i = 0;
  for (const auto& [code_point, length] : expected) {
    const auto c = DecodeUtf8(text, i);
    ASSERT_TRUE(c.has_value()) << i;
    EXPECT_EQ(c->code_point, code_point);
    EXPECT_EQ(c->length, length);
    i += c->length;
  }
  EXPECT_EQ(i, text.size());
}

TEST(Utf8Test, RefusesWhatIsNotTheShortestFormOfAScalarValue) {
  for (const std::string& bad : {
           std::string("\x80"),              // a continuation byte alone
           std::string("\xc0\xaf"),          // an overlong '/'
           std::string("\xe0\x80\xaf"),      // overlong, three bytes
           std::string("\xed\xa0\x80"),      // a surrogate
           std::string("\xf4\x90\x80\x80"),  // above U+10FFFF
           std::string("\xf8\x88\x80\x80"),  // a five-byte lead
           std::string("\xe3\x80"),          // cut off by the end
           std::string("\xc2z"),             // cut off by another character
       }) {
    EXPECT_FALSE(DecodeUtf8(bad, 0).has_value()) << ::testing::PrintToString(bad);
  }
}

}  // namespace
}  // namespace kvmrun
