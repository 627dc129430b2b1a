// superpose capture, run as a user would: the file it writes loads as a
// capture of the asked layers, models and positions, and bad inputs fail
// with one line and write nothing.
#include <sys/stat.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "analysis/capture.h"
#include "model/file_util.h"
#include "model/safetensors.h"
#include "tests/support/cli_runner.h"
#include "tests/support/tiny_superposition.h"

namespace fs = std::filesystem;

namespace {

const char* kData =
    "{\"text\": \"The cat sat on the mat.\", \"label\": 0, \"domain\": \"en\", \"source\": \"a\"}\n"
    "{\"text\": \"A dog barked twice at the moon.\", \"label\": 0, \"domain\": \"en\", \"source\": \"b\"}\n"
    "{\"text\": \"Le chat dort sur le tapis.\", \"label\": 1, \"domain\": \"fr\", \"source\": \"c\"}\n"
    "{\"text\": \"Il pleut sur la ville depuis ce matin.\", \"label\": 1, \"domain\": \"fr\", \"source\": \"d\"}\n";

class CaptureCli : public superpose::testing::CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    data_ = (dir_ / "data.jsonl").string();
    out_ = dir_ / "states.safetensors";
    superpose::write_file_atomic(data_, kData);
    sp_ = superpose::testing::save_tiny_superposition(dir_ / "tiny.sp");
  }

  std::vector<std::string> capture(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"capture", "--superposition", sp_, "--data", data_, "--out", out_.string(),
                                     "--device", "cpu"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  std::string data_, sp_;
  fs::path out_;
};

TEST_F(CaptureCli, WritesTheAskedStatesWithRowMetadata) {
  const auto r = run(capture({"--layers", "0,2", "--mlp-layers", "1", "--positions", "mean", "--json"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto summary = nlohmann::json::parse(r.out);
  EXPECT_EQ(summary["rows"], 4);
  EXPECT_EQ(summary["documents"], 4);
  EXPECT_EQ(summary["positions"], "mean");
  // base and fine: 2 states + 1 MLP each; the superposition: 2 states + 2 MLPs.
  EXPECT_EQ(summary["tensors"], 10);
  const auto c = superpose::load_capture(out_);
  EXPECT_EQ(c.models, (std::vector<std::string>{"base", "fine", "superposition"}));
  EXPECT_EQ(c.residual_layers, (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(c.sources, (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(c.data, data_);
  EXPECT_TRUE(torch::equal(c.labels, torch::tensor({0, 0, 1, 1}, torch::kInt64)));
  EXPECT_EQ(c.tensor("superposition.residual.2").sizes(), (std::vector<int64_t>{4, 20}));
  EXPECT_EQ(c.tensor("fine.mlp.1").sizes(), (std::vector<int64_t>{4, 52}));
}

TEST_F(CaptureCli, AlphaOverridesChangeOnlyTheSuperpositionsStates) {
  ASSERT_EQ(run(capture({"--layers", "3", "--alpha", "0"})).exit_code, 0);
  const auto a0 = superpose::load_capture(out_);
  ASSERT_EQ(run(capture({"--layers", "3", "--alpha", "1"})).exit_code, 0);
  const auto a1 = superpose::load_capture(out_);
  EXPECT_TRUE(torch::equal(a0.tensor("base.residual.3"), a1.tensor("base.residual.3")));
  EXPECT_FALSE(torch::allclose(a0.tensor("superposition.residual.3"), a1.tensor("superposition.residual.3")));
}

TEST_F(CaptureCli, BadArgumentsFailCleanly) {
  expect_clean_failure(capture({"--positions", "middle"}), {"--positions", "'middle'"}, out_);
  expect_clean_failure(capture({"--layers", "9"}), {"--layers", "state 9 does not exist", "0..3"}, out_);
  expect_clean_failure(capture({"--mlp-layers", "3"}), {"--mlp-layers", "block 3"}, out_);
  expect_clean_failure(capture({"--layers", "none"}), {"nothing to capture"}, out_);
  expect_clean_failure(capture({"--models", "base,merged"}), {"--models", "'merged'"}, out_);
  expect_clean_failure(capture({"--alpha", "2"}), {"--alpha", "outside [0, 1]"}, out_);
  expect_clean_failure(capture({"--seq-len", "65"}), {"--seq-len", "1..64"}, out_);
  expect_clean_failure(capture({"--positions", "400"}), {"--positions", "no document has text token 400"}, out_);
}

TEST_F(CaptureCli, BadDataAndOutputsFailCleanly) {
  superpose::write_file_atomic(dir_ / "bad.jsonl", "{\"text\": \"fine\", \"label\": 0}\n{\"text\": 3}\n");
  auto args = capture({});
  args[4] = (dir_ / "bad.jsonl").string();
  expect_clean_failure(args, {"bad.jsonl:2"}, out_);
  ::mkdir(out_.c_str(), 0755);
  expect_clean_failure(capture({}), {"--out", "is a directory"});
  EXPECT_TRUE(fs::is_directory(out_));
  expect_clean_failure({"capture", "--superposition", sp_, "--data", data_, "--out", (dir_ / "no" / "x.safetensors").string()},
                       {"--out", "no/x.safetensors"});
  EXPECT_FALSE(fs::exists(dir_ / "no"));
}

}  // namespace
