// superpose corpus and superpose train-tokenizer, run as a user would: the
// fixture recipe to a tokenizer that round-trips, and every bad input giving
// one line, a non-zero exit and nothing written.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/cli_runner.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

const fs::path kRecipe = fs::path(SUPERPOSE_FIXTURES) / "corpus/recipe.json";

using superpose::testing::slurp;

class CorpusCli : public superpose::testing::CliTest {
 protected:
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name, std::ios::binary) << text; }

  // A small valid JSONL file; returns its path.
  std::string good_jsonl() {
    write("good.jsonl", "{\"text\": \"hello hello hello world\", \"label\": 0}\n");
    return (dir_ / "good.jsonl").string();
  }

  // An existing non-empty directory, for refusals.
  fs::path busy_dir() {
    const fs::path busy = temp_.make_dir("busy");
    write("busy/keep.txt", "mine");
    return busy;
  }

  void expect_busy_dir_untouched(const fs::path& busy) {
    EXPECT_EQ(slurp(busy / "keep.txt"), "mine");
    size_t entries = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(busy)) ++entries;
    EXPECT_EQ(entries, 1u);
    for (const auto& entry : fs::directory_iterator(dir_)) {
      EXPECT_EQ(entry.path().filename().string().find("busy."), std::string::npos) << entry.path() << " left behind";
    }
  }
};

TEST_F(CorpusCli, RecipeToCorpusToTokenizerThatRoundTrips) {
  const fs::path corpus = dir_ / "corpus";
  auto r = run({"corpus", "--recipe", kRecipe.string(), "--out", corpus.string(), "--validation-share", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("en (label 0): 4 + 0 documents"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("fr (label 1): 1 + 0 documents"), std::string::npos) << r.err;
  const auto stats = nlohmann::json::parse(slurp(corpus / "stats.json"));
  EXPECT_EQ(stats["total"]["train"]["documents"], 5);
  EXPECT_EQ(slurp(corpus / "validation.jsonl"), "");

  const fs::path tokenizer = dir_ / "tok";
  r = run({"train-tokenizer", "--data", (corpus / "train.jsonl").string(), "--vocab-size", "320", "--out",
           tokenizer.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("320 tokens (63 merges) from 5 documents"), std::string::npos) << r.err;

  const std::string text = "The mill's wheel — la roue du moulin.";
  r = run({"tokenize", "--tokenizer", tokenizer.string(), text});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto ids = nlohmann::json::parse(r.out)["ids"][0];
  r = run({"tokenize", "--tokenizer", tokenizer.string(), "--decode", ids.dump()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["texts"][0], text);
}

TEST_F(CorpusCli, BadCorpusInputFailsCleanly) {
  const fs::path out = dir_ / "out";
  const std::string recipe = kRecipe.string();
  expect_clean_failure({"corpus", "--recipe", (dir_ / "missing.json").string(), "--out", out.string()},
                       {"missing.json"}, out);
  write("bad.json", "{\"sources\": [{\"name\": \"s\"}]}");
  expect_clean_failure({"corpus", "--recipe", (dir_ / "bad.json").string(), "--out", out.string()},
                       {"bad.json: sources[0] (\"s\"): missing \"domain\""}, out);
  expect_clean_failure({"corpus", "--recipe", recipe, "--out", out.string(), "--max-mb", "0"}, {"--max-mb"}, out);
  expect_clean_failure({"corpus", "--recipe", recipe, "--out", out.string(), "--validation-share", "1"},
                       {"--validation-share", "[0, 1)"}, out);
  expect_clean_failure({"corpus", "--recipe", recipe, "--out", out.string(), "--seed", "x"}, {"--seed", "'x'"}, out);
  const fs::path busy = busy_dir();
  expect_clean_failure({"corpus", "--recipe", recipe, "--out", busy.string()}, {"busy", "not empty"});
  expect_busy_dir_untouched(busy);
}

TEST_F(CorpusCli, BadTokenizerInputFailsCleanly) {
  const fs::path out = dir_ / "tok";
  const std::string good = good_jsonl();
  expect_clean_failure({"train-tokenizer", "--data", (dir_ / "missing.jsonl").string(), "--vocab-size", "300",
                        "--out", out.string()},
                       {"missing.jsonl"}, out);
  write("empty.jsonl", "");
  expect_clean_failure({"train-tokenizer", "--data", (dir_ / "empty.jsonl").string(), "--vocab-size", "300",
                        "--out", out.string()},
                       {"empty.jsonl", "holds no documents"}, out);
  write("broken.jsonl", "{\"text\": \"fine\", \"label\": 0}\n{\"text\": \"cut\n");
  expect_clean_failure({"train-tokenizer", "--data", good, "--data", (dir_ / "broken.jsonl").string(), "--vocab-size",
                        "300", "--out", out.string()},
                       {"broken.jsonl:2", "not valid JSON"}, out);
}

TEST_F(CorpusCli, BadTokenizerSizesFailCleanly) {
  const fs::path out = dir_ / "tok";
  const std::string good = good_jsonl();
  for (const char* bad : {"12x", "-5", "256", ""}) {
    expect_clean_failure({"train-tokenizer", "--data", good, "--vocab-size", bad, "--out", out.string()},
                         {"--vocab-size"}, out);
  }
  expect_clean_failure({"train-tokenizer", "--data", good, "--vocab-size", "300", "--min-frequency", "0", "--out",
                        out.string()},
                       {"--min-frequency"}, out);
  // More tokens than the text can make.
  expect_clean_failure({"train-tokenizer", "--data", good, "--vocab-size", "5000", "--out", out.string()},
                       {"vocab size", "5000"}, out);
  const fs::path busy = busy_dir();
  expect_clean_failure({"train-tokenizer", "--data", good, "--vocab-size", "260", "--out", busy.string()},
                       {"busy", "not empty"});
  expect_busy_dir_untouched(busy);
}

}  // namespace
