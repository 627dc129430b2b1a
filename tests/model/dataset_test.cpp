// JSONL documents and tokenized windows: every token is a target exactly once,
// batches line up with the token stream, shuffles repeat per seed.
#include "model/dataset.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "model/errors.h"
#include "model/model_dir.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tensor_compare.h"

namespace superpose {
namespace {

const Tokenizer& gpt2() {
  static const Tokenizer tokenizer = Tokenizer::from_dir(default_tokenizer_dir());
  return tokenizer;
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

TEST(Dataset, ReadsJsonlWithOptionalFields) {
  testing::TempDir tmp;
  write_text(tmp / "d.jsonl",
             "{\"text\": \"Hello world.\", \"label\": 0, \"domain\": \"en\", \"extra\": 3}\n"
             "\n"
             "{\"text\": \"Bonjour le monde.\", \"label\": 1, \"source\": \"x/y\"}\r\n");
  const auto docs = read_jsonl(tmp / "d.jsonl");
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].text, "Hello world.");
  EXPECT_EQ(docs[0].domain, "en");
  EXPECT_EQ(docs[1].label, 1);
  EXPECT_EQ(docs[1].source, "x/y");
  EXPECT_EQ(domain_names(docs), (std::vector<std::string>{"en", "fine"}));

  write_jsonl(tmp / "copy.jsonl", docs);
  const auto again = read_jsonl(tmp / "copy.jsonl");
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[1].text, docs[1].text);
  EXPECT_EQ(again[0].domain, "en");
}

TEST(Dataset, BadLinesNameFileAndLine) {
  testing::TempDir tmp;
  const auto path = tmp / "bad.jsonl";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"text\": \"a\", \"label\": 0}\n{oops\n", "bad.jsonl:2: not valid JSON"},
      {"[1, 2]\n", "bad.jsonl:1: expected a JSON object"},
      {"{\"label\": 0}\n", "missing string \"text\""},
      {"{\"text\": \"\", \"label\": 0}\n", "\"text\" is empty"},
      {"{\"text\": \"a\"}\n", "missing \"label\""},
      {"{\"text\": \"a\", \"label\": 2}\n", "\"label\" must be 0 (base domain) or 1"},
      {"{\"text\": \"a\", \"label\": \"fr\"}\n", "\"label\" must be 0"},
      {"{\"text\": \"a\", \"label\": 1, \"domain\": 5}\n", "\"domain\" must be a string"},
      {"{\"text\": \"\xff\", \"label\": 0}\n", "bad.jsonl:1: not valid JSON"},
      {"\n\n", "bad.jsonl: holds no documents"},
  };
  for (const auto& [content, message] : cases) {
    write_text(path, content);
    SUPERPOSE_EXPECT_THROW_WITH(read_jsonl(path), Error, message);
  }
  SUPERPOSE_EXPECT_THROW_WITH(read_jsonl(tmp / "missing.jsonl"), Error, "missing.jsonl");
}

TEST(Dataset, EveryTokenIsATargetExactlyOnce) {
  std::vector<Document> docs = {
      {"The quick brown fox jumps over the lazy dog. It was not amused at all, and said so loudly.", 0, "", ""},
      {"Le renard brun saute.", 1, "", ""},
      {"x", 0, "", ""},
  };
  const auto dataset = TokenDataset::build(docs, gpt2(), 5);
  const int64_t eos = *gpt2().eos_id();
  int64_t total = 0;
  for (size_t d = 0; d < docs.size(); ++d) {
    const auto ids = gpt2().encode(docs[d].text);
    ASSERT_EQ(dataset.tokens(static_cast<int64_t>(d)).front(), eos);
    total += static_cast<int64_t>(ids.size());
    // Collect the targets of this document's windows: they must be its ids, in order.
    std::vector<int64_t> targets;
    for (size_t w = 0; w < dataset.size(); ++w) {
      if (dataset.windows()[w].document != static_cast<int64_t>(d)) continue;
      const auto batch = dataset.batch({w});
      EXPECT_EQ(batch.labels[0].item<int64_t>(), docs[d].label);
      for (int64_t t = 0; t < 5; ++t) {
        const auto target = batch.targets[0][t].item<int64_t>();
        if (target == Batch::kIgnoreIndex) {
          EXPECT_EQ(batch.ids[0][t].item<int64_t>(), eos) << "padding uses the EOS id";
          continue;
        }
        // Inputs are the previous token of the same stream.
        const int64_t pos = batch.offsets[0].item<int64_t>() + t;
        EXPECT_EQ(batch.ids[0][t].item<int64_t>(), dataset.tokens(static_cast<int64_t>(d))[static_cast<size_t>(pos)]);
        targets.push_back(target);
      }
    }
    EXPECT_EQ(targets, ids) << "document " << d;
  }
  EXPECT_EQ(dataset.target_count(0) + dataset.target_count(1), total);
  EXPECT_EQ(dataset.target_count(1), static_cast<int64_t>(gpt2().encode(docs[1].text).size()));
}

TEST(Dataset, EpochOrderIsASeededPermutation) {
  std::vector<Document> docs;
  for (int i = 0; i < 40; ++i) docs.push_back({"Sentence number " + std::to_string(i) + " is here.", i % 2, "", ""});
  const auto dataset = TokenDataset::build(docs, gpt2(), 4);
  const auto a = dataset.epoch_order(7, 0);
  EXPECT_EQ(a, dataset.epoch_order(7, 0));
  EXPECT_NE(a, dataset.epoch_order(7, 1));
  EXPECT_NE(a, dataset.epoch_order(8, 0));
  EXPECT_EQ(std::set<size_t>(a.begin(), a.end()).size(), dataset.size());
  EXPECT_EQ(dataset.range(dataset.size() - 2, 10).size(), 2u);
  SUPERPOSE_EXPECT_THROW_WITH(TokenDataset::build(docs, gpt2(), 0), Error, "seq_len");
}

}  // namespace
}  // namespace superpose
