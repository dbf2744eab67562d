// Text from outside shown safely: escape sequences and other control characters become \xNN.
#include "core/safe_text.h"

#include <gtest/gtest.h>

namespace kvmrun {
namespace {

TEST(SafeTextTest, ControlCharactersAreShownNeverObeyed) {
  EXPECT_EQ(SafeText("2026-12-07\x1b]0;pwned\x07"), "2026-12-07\\x1b]0;pwned\\x07");
  EXPECT_EQ(SafeText("a\nb\tc\rd\x7f"), "a\\x0ab\\x09c\\x0dd\\x7f");
  EXPECT_EQ(SafeText("a\nb\tc\rd", KeepLayout::kNewlines), "a\nb\tc\\x0dd");
  EXPECT_EQ(SafeText("a\nb\tc\rd", KeepLayout::kXml), "a\nb\tc\rd");
  // U+009B is a CSI to many terminals, in UTF-8 as in Latin-1.
  EXPECT_EQ(SafeText("x\xc2\x9b"
                     "31m"),
            "x\\xc2\\x9b31m");
  EXPECT_EQ(SafeText("\xff\xfe ok"), "\\xff\\xfe ok");
  EXPECT_EQ(SafeText("\xc3\xa9t\xc3\xa9 \xe2\x9c\x93"), "\xc3\xa9t\xc3\xa9 \xe2\x9c\x93");
  EXPECT_EQ(SafeText("surrogate \xed\xa0\x80"), "surrogate \\xed\\xa0\\x80");
}

TEST(SafeTextTest, ExcerptsAreCutAndEscaped) {
  EXPECT_EQ(SafeExcerpt(std::string(300, 'a'), 10), "aaaaaaaaaa...");
  EXPECT_EQ(SafeExcerpt("\x1b[2J", 10), "\\x1b[2J");
}

}  // namespace
}  // namespace kvmrun
