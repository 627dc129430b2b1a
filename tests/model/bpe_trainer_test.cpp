// BPE training: merges worked out by hand, ties, errors, and vocabularies
// that the tokenizer loads, with GPT-2's byte order and exact round trips.
#include "model/bpe_trainer.h"

#include <gtest/gtest.h>

#include <fstream>

#include "model/corpus.h"
#include "model/errors.h"
#include "model/file_util.h"
#include "model/model_dir.h"
#include "model/tokenizer.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tensor_compare.h"

namespace superpose {
namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = fs::path(SUPERPOSE_FIXTURES) / "corpus";

// The merges as "left right" strings of raw bytes.
std::vector<std::string> merge_strings(const BpeVocabulary& v) {
  std::vector<std::string> out;
  for (const auto& [left, right] : v.merges) out.push_back(v.tokens[left] + "|" + v.tokens[right]);
  return out;
}

BpeVocabulary train(const std::vector<std::string>& texts, int64_t vocab_size, int64_t min_frequency) {
  BpeTrainer trainer;
  for (const std::string& text : texts) trainer.add_text(text);
  return trainer.train({vocab_size, min_frequency});
}

// "ab ab ab abc": words "ab" x1, " ab" x2, " abc" x1. Pair counts a-b 4,
// " "-a 3, b-c 1: merge a+b; then " "+ab (3), then " ab"+c (1).
TEST(BpeTrainer, MergesWorkedOutByHand) {
  BpeTrainer trainer;
  trainer.add_text("ab ab ab abc");
  EXPECT_EQ(trainer.word_count(), 4);
  EXPECT_EQ(trainer.distinct_words(), 3);
  const BpeVocabulary v = trainer.train({260, 1});
  EXPECT_EQ(merge_strings(v), (std::vector<std::string>{"a|b", " |ab", " ab|c"}));
  ASSERT_EQ(v.tokens.size(), 259u);
  EXPECT_EQ(v.tokens[256], "ab");
  EXPECT_EQ(v.tokens[257], " ab");
  EXPECT_EQ(v.tokens[258], " abc");
  EXPECT_EQ(v.vocab_size(), 260);
  // With min frequency 2, " ab"+c (seen once) is never merged.
  SUPERPOSE_EXPECT_THROW_WITH(trainer.train({260, 2}), Error, "vocab size", "260", "at least 2 times after 259 tokens");
}

// "xy zw": every pair once. Ties go to the smallest left bytes (" " < "x" < "z"),
// so " "+z first, then " z"+w (" z" < "x"), then x+y.
TEST(BpeTrainer, TiesGoToTheSmallestBytes) {
  EXPECT_EQ(merge_strings(train({"xy zw"}, 260, 1)), (std::vector<std::string>{" |z", " z|w", "x|y"}));
  // Equal left tokens ("ac", "\n", "ab"): the smaller right one first.
  EXPECT_EQ(merge_strings(train({"ac\nab"}, 258, 1)), (std::vector<std::string>{"a|b"}));
  EXPECT_EQ(merge_strings(train({"ac\nab"}, 259, 1)), (std::vector<std::string>{"a|b", "a|c"}));
}

TEST(BpeTrainer, ResultDependsOnlyOnTheWordCounts) {
  const BpeVocabulary a = train({"the cat sat on the mat", "le chat est sur le tapis", "the end"}, 280, 1);
  const BpeVocabulary b = train({"the end", "le chat est sur le tapis", "the cat sat on the mat"}, 280, 1);
  EXPECT_EQ(merge_strings(a), merge_strings(b));
  EXPECT_EQ(a.tokens, b.tokens);
}

TEST(BpeTrainer, BadOptionsAndText) {
  BpeTrainer trainer;
  trainer.add_text("hello hello");
  SUPERPOSE_EXPECT_THROW_WITH(trainer.train({256, 1}), Error, "vocab size", "at least 257", "got 256");
  SUPERPOSE_EXPECT_THROW_WITH(trainer.train({300, 0}), Error, "min frequency", "at least 1");
  SUPERPOSE_EXPECT_THROW_WITH(trainer.train({300, 1}, [](int64_t, int64_t) { return false; }), Error, "cancelled");
  SUPERPOSE_EXPECT_THROW_WITH(trainer.add_text("bad \xff byte"), Error, "text", "invalid UTF-8 at byte 4");
  // 257 is the bytes and the end-of-text token only: no merge needed.
  const BpeVocabulary bytes_only = trainer.train({257, 1});
  EXPECT_TRUE(bytes_only.merges.empty());
  EXPECT_EQ(bytes_only.vocab_size(), 257);
}

#ifdef SUPERPOSE_WITH_CORPUS  // the round trip reads the fixture corpus through build_corpus
// The fixture corpus' texts, as a corpus build gives them.
std::vector<std::string> fixture_texts() {
  CorpusOptions options;
  options.validation_share = 0.0;
  std::vector<std::string> texts;
  for (const Document& d : build_corpus(CorpusRecipe::load(kCorpus / "recipe.json"), options).train) {
    texts.push_back(d.text);
  }
  return texts;
}

TEST(BpeTrainer, WrittenVocabularyLoadsWithGpt2ByteOrderAndRoundTrips) {
  const std::vector<std::string> texts = fixture_texts();
  ASSERT_EQ(texts.size(), 5u);
  const BpeVocabulary vocabulary = train(texts, 400, 2);
  ASSERT_EQ(vocabulary.vocab_size(), 400);
  testing::TempDir tmp;
  write_bpe_vocabulary(vocabulary, tmp / "tok");
  SUPERPOSE_EXPECT_THROW_WITH(write_bpe_vocabulary(vocabulary, tmp / "tok"), Error, "not empty");
  EXPECT_EQ(read_file(tmp / "tok/merges.txt").substr(0, 13), "#version: 0.2");

  const Tokenizer tokenizer = Tokenizer::from_dir(tmp / "tok");
  EXPECT_EQ(tokenizer.vocab_size(), 400);
  EXPECT_EQ(tokenizer.eos_id(), 399);
  const Tokenizer gpt2 = Tokenizer::from_dir(default_tokenizer_dir());
  for (int64_t id = 0; id < 256; ++id) {
    EXPECT_EQ(tokenizer.token_bytes(id), gpt2.token_bytes(id)) << "id " << id;
  }
  for (size_t id = 256; id < vocabulary.tokens.size(); ++id) {
    EXPECT_EQ(tokenizer.token_bytes(static_cast<int64_t>(id)), vocabulary.tokens[id]) << "id " << id;
  }

  std::vector<std::string> samples = texts;
  samples.insert(samples.end(), {"", "Unseen words: Ça, naïve, 東京, 😀, tabs\t and\r\nnewlines  ", "<|endoftext|>"});
  int64_t tokens = 0, bytes = 0;
  for (const std::string& text : samples) {
    const std::vector<int64_t> ids = tokenizer.encode(text);
    EXPECT_EQ(tokenizer.decode(ids), text);
    tokens += static_cast<int64_t>(ids.size());
    bytes += static_cast<int64_t>(text.size());
  }
  EXPECT_LT(tokens * 3, bytes * 2) << "the merges should make a third fewer tokens than bytes on their own training text";
}

#endif  // SUPERPOSE_WITH_CORPUS

}  // namespace
}  // namespace superpose
