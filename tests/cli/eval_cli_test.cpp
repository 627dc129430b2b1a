// superpose eval, run as a user would: one run's JSON, CSV and Markdown agree,
// a non-causal superposition is labelled in each, and every bad input fails
// with one line and writes nothing.
#include <sys/stat.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdio>
#include <sstream>

#include "model/file_util.h"
#include "model/superposition_io.h"
#include "tests/support/cli_runner.h"
#include "tests/support/no_eos_tokenizer.h"
#include "tests/support/tiny_superposition.h"

namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = SUPERPOSE_FIXTURES;
const std::string kBase = (kFixtures / "gpt2-tiny").string();
const std::string kFine = (kFixtures / "gpt2-tiny-fine").string();

const char* kData =
    "{\"text\": \"The cat sat on the mat.\", \"label\": 0, \"domain\": \"en\"}\n"
    "{\"text\": \"A dog barked twice at the moon.\", \"label\": 0, \"domain\": \"en\"}\n"
    "{\"text\": \"Le chat dort sur le tapis.\", \"label\": 1, \"domain\": \"fr\"}\n"
    "{\"text\": \"Il pleut sur la ville depuis ce matin.\", \"label\": 1, \"domain\": \"fr\"}\n";

// Fields of each CSV line (these files quote nothing: names have no commas).
std::vector<std::vector<std::string>> csv_lines(const std::string& text) {
  std::vector<std::vector<std::string>> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    lines.emplace_back();
    std::istringstream fields(line);
    std::string field;
    while (std::getline(fields, field, ',')) lines.back().push_back(field);
  }
  return lines;
}

class EvalCli : public superpose::testing::CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    data_ = (dir_ / "data.jsonl").string();
    csv_ = dir_ / "out.csv";
    superpose::write_file_atomic(data_, kData);
  }

  // A causal 1D superposition over the tiny pair with seeded random weights.
  std::string causal_superposition() { return superpose::testing::save_tiny_superposition(dir_ / "causal.sp"); }

  // A bad input: one line naming the problem, nothing on stdout, no CSV (rows
  // or layers) and no temporaries beside it.
  void expect_nothing_written(const std::vector<std::string>& args, const std::vector<std::string>& fragments) {
    auto all = args;
    all.insert(all.end(), {"--csv", csv_.string()});
    expect_clean_failure(all, fragments, csv_);
    EXPECT_FALSE(fs::exists(dir_ / "out-layers.csv"));
    EXPECT_EQ(superpose::testing::slurp(dir_ / "stdout"), "");
  }

  // eval over the two experts and `data` (data_ when empty), then `extra`.
  std::vector<std::string> experts_eval(const std::vector<std::string>& extra, const std::string& data = {}) {
    std::vector<std::string> args = {"eval", "--base", kBase, "--fine", kFine, "--data", data.empty() ? data_ : data};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  std::string data_;
  fs::path csv_;
};

TEST_F(EvalCli, JsonCsvAndMarkdownOfOneRunAgree) {
  const auto md = dir_ / "out.md";
  const auto r = run({"eval", "--superposition", causal_superposition(), "--data", data_, "--seq-len", "5", "--json",
                      "--csv", csv_.string(), "--markdown", md.string(), "--device", "cpu"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");  // no progress bar: stderr is not a terminal
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["causal"], true);
  EXPECT_EQ(j["seq_len"], 5);
  const std::vector<std::string> models = {"base",   "fine",           "superposition", "superposition-a0",
                                           "superposition-a1", "linear", "task-arithmetic", "alpha-hard"};
  ASSERT_EQ(j["rows"].size(), 2 * models.size());
  ASSERT_EQ(j["layers"].size(), 2 * models.size() * 4);  // hidden states 0..3

  const auto rows = csv_lines(superpose::read_file(csv_));
  ASSERT_EQ(rows.size(), 1 + j["rows"].size());
  const char* keys[] = {"ppl", "ppl_lo", "ppl_hi", "acc", "jsd", "cosine", "mse"};
  for (size_t i = 0; i < j["rows"].size(); ++i) {
    const auto& row = j["rows"][i];
    const auto& fields = rows[i + 1];
    SCOPED_TRACE(fields[0] + " / " + fields[1]);
    EXPECT_EQ(row["model"], models[i / 2]);
    EXPECT_EQ(row["domain"], i % 2 == 0 ? "en" : "fr");
    EXPECT_EQ(fields[0], row["model"]);
    EXPECT_EQ(fields[1], row["domain"]);
    for (size_t k = 0; k < 7; ++k) EXPECT_EQ(std::stod(fields[2 + k]), row[keys[k]].get<double>()) << keys[k];
    EXPECT_EQ(fields[11], "true");
  }
  const auto layers = csv_lines(superpose::read_file(dir_ / "out-layers.csv"));
  ASSERT_EQ(layers.size(), 1 + j["layers"].size());
  EXPECT_EQ(std::stod(layers.back()[5]), j["layers"].back()["l2_base_fine"].get<double>());

  // The Markdown file: the first row's perplexity to its two decimals.
  const std::string markdown = superpose::read_file(md);
  EXPECT_EQ(markdown.find("non-causal"), std::string::npos);
  const auto at = markdown.find("| base | en | ");
  ASSERT_NE(at, std::string::npos);
  double ppl = 0;
  ASSERT_EQ(std::sscanf(markdown.c_str() + at, "| base | en | %lf", &ppl), 1);
  EXPECT_NEAR(ppl, j["rows"][0]["ppl"].get<double>(), 0.005);
}

TEST_F(EvalCli, NonCausalSuperpositionIsLabelledInEveryFormat) {
  const auto sp = (dir_ / "seed.sp").string();
  const auto imported = run({"import-seed", "--checkpoint", (kFixtures / "superposition" / "seed_1d.pt").string(),
                             "--base", kBase, "--fine", kFine, "--out", sp});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  const auto md = dir_ / "out.md";
  const auto r = run({"eval", "--superposition", sp, "--data", data_, "--seq-len", "6", "--models",
                      "superposition,base", "--json", "--csv", csv_.string(), "--markdown", md.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("non-causal"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(r.out)["causal"], false);
  EXPECT_NE(superpose::read_file(md).find("non-causal"), std::string::npos);
  const auto rows = csv_lines(superpose::read_file(csv_));
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[0].back(), "causal");
  EXPECT_EQ(rows[1][0] + "," + rows[1].back(), "superposition,false");
  EXPECT_EQ(rows[3][0] + "," + rows[3].back(), "base,true");
  EXPECT_EQ(csv_lines(superpose::read_file(dir_ / "out-layers.csv"))[1].back(), "false");
}

TEST_F(EvalCli, ExpertsAloneGiveExpertAndMergeRowsAsMarkdown) {
  const auto r = run(experts_eval({"--seq-len", "6"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* row : {"| base | en |", "| fine | fr |", "| linear | en |", "| task-arithmetic | fr |"}) {
    EXPECT_NE(r.out.find(row), std::string::npos) << row << " missing from\n" << r.out;
  }
  EXPECT_EQ(r.out.find("superposition"), std::string::npos);
  EXPECT_EQ(r.out.find("alpha-hard"), std::string::npos);
}

TEST_F(EvalCli, BadArgumentsFailCleanly) {
  expect_nothing_written(experts_eval({"--models", "base,best"}), {"--models", "unknown model 'best'"});
  expect_nothing_written(experts_eval({"--models", "base,superposition"}),
                         {"--models", "'superposition' needs a superposition"});
  expect_nothing_written(experts_eval({"--seq-len", "0"}), {"--seq-len", "at least 1"});
  expect_nothing_written({"eval", "--base", kBase, "--data", data_}, {"--fine", "--superposition"});
}

TEST_F(EvalCli, BadDataFailsCleanly) {
  expect_nothing_written(experts_eval({}, (dir_ / "missing.jsonl").string()), {"missing.jsonl", "No such file"});
  superpose::write_file_atomic(dir_ / "bad.jsonl", "{\"text\": \"ok\", \"label\": 0}\n{\"text\": oops}\n");
  expect_nothing_written(experts_eval({}, (dir_ / "bad.jsonl").string()), {"bad.jsonl:2", "not valid JSON"});
}

TEST_F(EvalCli, NothingToPredictOrTooLongWindowsFailCleanly) {
  // One-token documents and a vocabulary without <|endoftext|>: nothing to predict.
  const auto tokenizer = dir_ / "no-eos";
  ::mkdir(tokenizer.c_str(), 0755);
  superpose::testing::write_tokenizer_without_eos(tokenizer);
  superpose::write_file_atomic(dir_ / "short.jsonl",
                               "{\"text\": \"Hello\", \"label\": 0}\n{\"text\": \"world\", \"label\": 1}\n");
  expect_nothing_written(
      experts_eval({"--seq-len", "8", "--tokenizer", tokenizer.string()}, (dir_ / "short.jsonl").string()),
                         {"eval: no document has a target token"});
  // Longer windows than the experts' 64 positions.
  expect_nothing_written(experts_eval({"--seq-len", "65"}), {"--seq-len", "65 exceeds the experts' context of 64"});
}

TEST_F(EvalCli, OccupiedOutputsFailBeforeEvaluating) {
  // A directory where the file should go.
  const auto busy = dir_ / "busy.csv";
  ::mkdir(busy.c_str(), 0755);
  expect_clean_failure(experts_eval({"--csv", busy.string()}), {"--csv", "busy.csv: is a directory"});
  EXPECT_TRUE(fs::is_directory(busy));
  EXPECT_FALSE(fs::exists(dir_ / "busy-layers.csv"));
  // One path for two outputs; the CSV reserved first must not stay behind.
  expect_nothing_written(experts_eval({"--markdown", csv_.string()}), {"--markdown", "also the output of --csv"});
}

TEST_F(EvalCli, OutputsInMissingFoldersFailBeforeEvaluating) {
  // A folder that does not exist, and one that is a file.
  expect_clean_failure(experts_eval({"--csv", (dir_ / "nowhere" / "out.csv").string()}), {"--csv", "nowhere/out.csv"});
  expect_clean_failure(experts_eval({"--markdown", (fs::path(data_) / "out.md").string()}),
                       {"--markdown", "data.jsonl/out.md"});
  EXPECT_EQ(superpose::testing::slurp(dir_ / "stdout"), "");
}

}  // namespace
