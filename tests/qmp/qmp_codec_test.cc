#include "kvmrun/qmp_codec.h"

#include <gtest/gtest.h>

namespace kvmrun {
namespace {

std::vector<QmpMessage> DecodeInChunks(const std::string& stream, std::size_t chunk) {
  QmpDecoder decoder;
  std::vector<QmpMessage> out;
  for (std::size_t i = 0; i < stream.size(); i += chunk) {
    decoder.Feed(std::string_view(stream).substr(i, chunk));
    while (auto m = decoder.Next()) out.push_back(std::move(*m));
  }
  EXPECT_FALSE(decoder.HasPartialMessage());
  return out;
}

const std::string kStream =
    R"({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}})"
    "\r\n"
    R"({"return": {}, "id": 1})"
    "\r\n"
    R"({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"})"
    "\r\n"
    R"({"error": {"class": "GenericError", "desc": "brace } and \"quote\" {"}, "id": 2})"
    "\r\n";

TEST(QmpDecoderTest, AnyReadBoundaryGivesTheSameMessages) {
  for (std::size_t chunk : {1u, 2u, 3u, 7u, 64u, 100000u}) {
    const auto messages = DecodeInChunks(kStream, chunk);
    ASSERT_EQ(messages.size(), 4u) << "chunk " << chunk;
    EXPECT_EQ(messages[0].kind, QmpMessageKind::kGreeting);
    EXPECT_EQ(messages[1].kind, QmpMessageKind::kReturn);
    EXPECT_EQ(messages[1].id(), 1);
    EXPECT_EQ(messages[2].kind, QmpMessageKind::kEvent);
    EXPECT_EQ(messages[3].kind, QmpMessageKind::kError);
    EXPECT_EQ(messages[3].json["error"]["desc"], "brace } and \"quote\" {");
  }
}

TEST(QmpDecoderTest, LfOnlyNoSeparatorAndPrettyPrintedMessages) {
  const auto lf = DecodeInChunks("{\"return\": 1, \"id\": 1}\n{\"return\": 2, \"id\": 2}\n", 5);
  ASSERT_EQ(lf.size(), 2u);
  const auto glued = DecodeInChunks("{\"return\":1,\"id\":1}{\"return\":[2],\"id\":2}", 4);
  ASSERT_EQ(glued.size(), 2u);
  EXPECT_EQ(glued[1].json["return"][0], 2);
  const auto pretty =
      DecodeInChunks("{\n    \"return\": {\n        \"a\": [1, {}]\n    },\n    \"id\": 7\n}\n", 3);
  ASSERT_EQ(pretty.size(), 1u);
  EXPECT_EQ(pretty[0].id(), 7);
}

TEST(QmpDecoderTest, EscapedBackslashBeforeQuoteEndsTheString) {
  const auto m = DecodeInChunks(R"({"return": "a\\", "id": 1}{"return": "}", "id": 2})", 1);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].json["return"], "a\\");
  EXPECT_EQ(m[1].json["return"], "}");
}

TEST(QmpDecoderTest, GarbageIsAnErrorNamingTheByte) {
  QmpDecoder decoder;
  decoder.Feed("{\"return\": {}}\r\nHTTP/1.1 400 Bad Request\r\n");
  ASSERT_TRUE(decoder.Next().has_value());
  try {
    decoder.Next();
    FAIL();
  } catch (const QmpProtocolError& e) {
    EXPECT_EQ(std::string(e.what()),
              "QMP stream: expected '{' but got \"HTTP/1.1 400 Bad Request..\" at byte 16");
  }
  EXPECT_THROW(decoder.Next(), QmpProtocolError) << "unusable after an error";
}

TEST(QmpDecoderTest, MalformedJsonInsideAnObjectIsAnError) {
  QmpDecoder decoder;
  decoder.Feed("{\"return\": tru}");
  try {
    decoder.Next();
    FAIL();
  } catch (const QmpProtocolError& e) {
    EXPECT_NE(std::string(e.what()).find("malformed JSON"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("at byte 0"), std::string::npos) << e.what();
  }
}

// Found by the fuzzer: a number too large for a double is out_of_range, not a parse_error.
TEST(QmpDecoderTest, NumberOverflowIsAProtocolErrorNotACrash) {
  QmpDecoder decoder;
  decoder.Feed("{\"return\": 11111111E5555555555555555555555555}\r\n");
  EXPECT_THROW(decoder.Next(), QmpProtocolError);
}

TEST(QmpDecoderTest, TopLevelNonObjectsAreRejected) {
  for (const char* bad : {"[1,2]", "42", "\"str\"", "null"}) {
    QmpDecoder decoder;
    decoder.Feed(bad);
    EXPECT_THROW(decoder.Next(), QmpProtocolError) << bad;
  }
}

TEST(QmpDecoderTest, UnknownObjectsAreRejected) {
  QmpDecoder decoder;
  decoder.Feed("{\"hello\": 1}");
  try {
    decoder.Next();
    FAIL();
  } catch (const QmpProtocolError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown QMP message"), std::string::npos);
  }
  QmpDecoder errors;
  errors.Feed("{\"error\": \"no class\"}");
  EXPECT_THROW(errors.Next(), QmpProtocolError);
}

TEST(QmpDecoderTest, OversizedMessagesAreRejectedWithoutBufferingForever) {
  QmpDecoder decoder(1024);
  decoder.Feed("{\"return\": \"" + std::string(2000, 'x'));
  try {
    decoder.Next();
    FAIL();
  } catch (const QmpProtocolError& e) {
    EXPECT_NE(std::string(e.what()).find("message larger than 1024 bytes"), std::string::npos);
  }
}

TEST(QmpDecoderTest, TenMebibyteMessageDecodes) {
  const std::string big = "{\"return\": \"" + std::string(10u << 20, 'a') + "\", \"id\": 3}\r\n";
  const auto m = DecodeInChunks(big, 65536);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].json["return"].get<std::string>().size(), 10u << 20);
}

TEST(QmpDecoderTest, ManySmallMessagesInOneReadStayLinear) {
  std::string stream;
  for (int i = 0; i < 200000; ++i)
    stream += "{\"return\": {}, \"id\": " + std::to_string(i) + "}\r\n";
  QmpDecoder decoder;
  decoder.Feed(stream);
  int count = 0;
  while (decoder.Next()) ++count;
  EXPECT_EQ(count, 200000);
  EXPECT_EQ(decoder.bytes_fed(), stream.size());
}

TEST(QmpDecoderTest, TruncatedMessageIsReportedAsPartial) {
  QmpDecoder decoder;
  decoder.Feed("{\"return\": {\"a\": ");
  EXPECT_FALSE(decoder.Next().has_value());
  EXPECT_TRUE(decoder.HasPartialMessage());
  QmpDecoder whitespace;
  whitespace.Feed("\r\n  \n");
  EXPECT_FALSE(whitespace.Next().has_value());
  EXPECT_FALSE(whitespace.HasPartialMessage());
}

TEST(QmpEncodeTest, CommandsCarryAnIdAndEndInCrlf) {
  EXPECT_EQ(EncodeQmpCommand("query-kvm", nullptr, 3), "{\"execute\":\"query-kvm\",\"id\":3}\r\n");
  EXPECT_EQ(EncodeQmpCommand("query-kvm", nlohmann::json::object(), 4),
            "{\"execute\":\"query-kvm\",\"id\":4}\r\n");
  EXPECT_EQ(EncodeQmpCommand("qom-get", {{"path", "/machine"}, {"property", "hpet"}}, 5),
            "{\"arguments\":{\"path\":\"/machine\",\"property\":\"hpet\"},\"execute\":\"qom-get\","
            "\"id\":5}\r\n");
}

}  // namespace
}  // namespace kvmrun

namespace kvmrun {
namespace {

std::string Nested(int depth) {
  return "{\"return\": " + std::string(depth, '[') + std::string(depth, ']') + "}";
}

// Nesting from a peer is refused before anything recursive sees it.
TEST(QmpDecoderTest, NestingDeeperThanTheLimitIsAProtocolError) {
  QmpDecoder ok;
  ok.Feed(Nested(kMaxJsonDepth - 1));
  EXPECT_TRUE(ok.Next().has_value());
  QmpDecoder deep;
  deep.Feed(Nested(100000));
  try {
    deep.Next();
    FAIL();
  } catch (const QmpProtocolError& e) {
    EXPECT_NE(std::string(e.what()).find("nested deeper than 128 levels"), std::string::npos);
  }
}

TEST(ParseBoundedJsonTest, RefusesDeepNestingButNotDeepLookingStrings) {
  EXPECT_EQ(ParseBoundedJson(R"({"a": "[[[[[[[[[[[[[["})")["a"], "[[[[[[[[[[[[[[");
  EXPECT_EQ(
      ParseBoundedJson(std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']')).size(),
      1u);
  EXPECT_THROW(ParseBoundedJson(std::string(kMaxJsonDepth + 1, '[')), JsonTooDeep);
  EXPECT_THROW(ParseBoundedJson("{oops"), nlohmann::json::exception);
}

}  // namespace
}  // namespace kvmrun
