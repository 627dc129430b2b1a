// superpose import-seed / trace --superposition / generate --superposition /
// audit, run as a user would: the notebook references reproduced through the
// command line (SPEC §7 formats), and every bad input failing cleanly.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "model/file_util.h"
#include "model/safetensors.h"
#include "tests/support/cli_runner.h"
#include "tests/support/tensor_compare.h"

namespace fs = std::filesystem;
using superpose::testing::all_close;

namespace {

const fs::path kFixtures = SUPERPOSE_FIXTURES;
const fs::path kSeeds = kFixtures / "superposition";
const std::string kBase = (kFixtures / "gpt2-tiny").string();
const std::string kFine = (kFixtures / "gpt2-tiny-fine").string();

class SuperpositionCli : public superpose::testing::CliTest {
 protected:
  int imports_ = 0;
  nlohmann::json reference() { return nlohmann::json::parse(superpose::read_file(kSeeds / "reference.json")); }
  std::string import(const std::string& seed, const std::vector<std::string>& extra = {}) {
    const auto out = (dir_ / (seed + "." + std::to_string(imports_++) + ".sp")).string();
    std::vector<std::string> args = {"import-seed", "--checkpoint", (kSeeds / seed).string(), "--base", kBase,
                                     "--fine",      kFine,          "--out",                   out};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = run(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return out;
  }
  // Traces `prompt` and checks every tensor of `reference_file` (names, dtypes, shapes, values within 1e-4).
  void expect_trace(const std::vector<std::string>& args, const fs::path& reference_file) {
    const auto out = dir_ / "trace.safetensors";
    std::vector<std::string> all = {"trace", "--out", out.string()};
    all.insert(all.end(), args.begin(), args.end());
    const auto r = run(all);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const superpose::SafetensorsFile got(out), expected(reference_file);
    ASSERT_EQ(got.tensors().size(), expected.tensors().size());
    for (const auto& info : expected.tensors()) {
      SCOPED_TRACE(info.name);
      const auto* mine = got.find(info.name);
      ASSERT_NE(mine, nullptr);
      EXPECT_EQ(mine->dtype, info.dtype);
      EXPECT_EQ(mine->shape, info.shape);
      if (info.name == "token_ids") {
        EXPECT_TRUE(torch::equal(got.load(info.name), expected.load(info.name)));
      } else {
        EXPECT_TRUE(all_close(got.load(info.name), expected.load(info.name), 1e-4));
      }
    }
    EXPECT_EQ(got.metadata().at("causal"), "false");
  }
};

TEST_F(SuperpositionCli, ImportAndTraceReproduceTheNotebooks) {
  const auto ref = reference();
  const auto one = import("seed_1d.pt");
  expect_trace({"--superposition", one, "--prompt", ref["prompts"][0]}, kSeeds / "ref_1d.safetensors");
  expect_trace({"--superposition", one, "--prompt", ref["prompts"][0], "--alpha-layers", "0.2,0.9,0.5", "--ae-off", "1"},
               kSeeds / "ref_1d_override.safetensors");
  const auto two = import("seed_2d.pt");
  expect_trace({"--superposition", two, "--prompt", ref["prompts"][1]}, kSeeds / "ref_2d.safetensors");
  const auto base_blend = import("seed_2d.pt", {"--embedding-blend", "base"});
  expect_trace({"--superposition", base_blend, "--prompt", ref["prompts"][1]}, kSeeds / "ref_2d_base_blend.safetensors");
  // Experts given on the command line instead of the checkpoint's.
  expect_trace({"--superposition", one, "--base", kBase, "--fine", kFine, "--prompt", ref["prompts"][0]},
               kSeeds / "ref_1d.safetensors");
}

TEST_F(SuperpositionCli, GenerateReproducesTheNotebookLoopAndFollowsSchedules) {
  const auto ref = reference();
  const auto one = import("seed_1d.pt");
  auto r = run({"generate", "--superposition", one, "--prompt", ref["prompts"][0], "--temperature", "0",
                "--max-new-tokens", "8", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["ids"], ref["greedy_1d"]["new_ids"]);
  EXPECT_EQ(out["causal"], false);
  EXPECT_NE(r.err.find("non-causal"), std::string::npos);

  // A schedule that holds α at 1 from position 0 equals --alpha 1.
  superpose::write_file_atomic(dir_ / "schedule.json", R"({"schedule": [{"from": 0, "alpha": 1.0}]})");
  const std::vector<std::string> common = {"generate", "--superposition", one, "--prompt", "Hello", "--temperature",
                                           "0", "--max-new-tokens", "6", "--json"};
  auto with = [&](std::vector<std::string> extra) {
    auto args = common;
    args.insert(args.end(), extra.begin(), extra.end());
    const auto result = run(args);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return nlohmann::json::parse(result.out)["ids"];
  };
  EXPECT_EQ(with({"--alpha-schedule", (dir_ / "schedule.json").string()}), with({"--alpha", "1"}));
}

TEST_F(SuperpositionCli, AuditLabelsCenteredModelsAndExitsZero) {
  const auto one = import("seed_1d.pt");
  auto r = run({"audit", "--superposition", one});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("non-causal", 0), 0u) << r.out;
  r = run({"audit", "--superposition", one, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["causal"], false);
  EXPECT_GT(j["max_deviation"].get<double>(), 1e-3);
  EXPECT_EQ(j["convolution"], "centered");

  // The generation gap over prompts from a data file.
  const auto data = dir_ / "prompts.jsonl";
  superpose::write_file_atomic(data, "{\"text\": \"The cat sat on the mat and looked at the rain outside.\", \"label\": 0}\n"
                                     "{\"text\": \"Le chat est assis sur le tapis et regarde la pluie.\", \"label\": 1}\n");
  r = run({"audit", "--superposition", one, "--json", "--data", data.string(), "--generations", "1", "--prompt-tokens",
           "4", "--new-tokens", "6"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto gap = nlohmann::json::parse(r.out)["generation_gap"];
  EXPECT_EQ(gap["sequences"], 2);
  EXPECT_EQ(gap["tokens"], 12);
  EXPECT_GT(gap["ppl_generation"].get<double>(), 1.0);
  expect_clean_failure({"audit", "--superposition", one, "--generations", "1"}, {"--generations", "--data"});
  expect_clean_failure({"audit", "--superposition", one, "--generations", "1", "--data", data.string(),
                        "--prompt-tokens", "400"},
                       {"prompts.jsonl", "no document"});
}

TEST_F(SuperpositionCli, AlphaHardMergeTakesTheLearnedAlphaOfASuperposition) {
  const auto two = import("seed_2d.pt");
  // The 2D α averaged over dimensions, per layer, as --alpha-layers.
  const auto alpha = superpose::SafetensorsFile(kSeeds / "ref_2d.safetensors").load("alpha").to(torch::kFloat64).mean(1);
  std::string layers;
  for (int64_t l = 0; l < alpha.size(0); ++l) {
    layers += (l ? "," : "") + std::to_string(alpha[l].item<double>());
  }
  const auto a = dir_ / "from_superposition", b = dir_ / "from_list";
  const std::vector<std::string> merge = {"merge", "--base", kBase, "--fine", kFine, "--method", "alpha-hard"};
  auto with = [&](std::vector<std::string> extra) {
    auto args = merge;
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = run(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  };
  with({"--superposition", two, "--out", a.string()});
  with({"--alpha-layers", layers, "--out", b.string()});
  const superpose::SafetensorsFile x(a / "model.safetensors"), y(b / "model.safetensors");
  for (const auto& info : x.tensors()) {
    SCOPED_TRACE(info.name);
    EXPECT_TRUE(all_close(x.load(info.name), y.load(info.name), 1e-5));  // α printed with 6 decimals
  }
  expect_clean_failure({"merge", "--base", kBase, "--fine", kFine, "--method", "alpha-hard", "--superposition", two,
                        "--alpha-layers", layers, "--out", (dir_ / "c").string()},
                       {"not both"}, dir_ / "c");
  expect_clean_failure({"merge", "--base", kBase, "--fine", kFine, "--method", "linear", "--superposition", two,
                        "--out", (dir_ / "c").string()},
                       {"--superposition", "applies to alpha-hard only"}, dir_ / "c");
}

TEST_F(SuperpositionCli, BadInputFailsWithOneLineAndNoFile) {
  const auto one = import("seed_1d.pt");
  const auto out = dir_ / "bad.safetensors";
  const std::vector<std::string> trace = {"trace", "--superposition", one, "--prompt", "hi", "--out", out.string()};
  auto with = [&](std::vector<std::string> extra) {
    auto args = trace;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  expect_clean_failure(with({"--alpha", "1.5"}), {"--alpha", "outside [0, 1]"}, out);
  expect_clean_failure(with({"--alpha", "x"}), {"--alpha", "'x' is not a number"}, out);
  expect_clean_failure(with({"--alpha-layers", "0.1,0.2"}), {"--alpha-layers", "got 2 values", "3 layers"}, out);
  expect_clean_failure(with({"--alpha-layers", "0.1,-0.2,0.3"}), {"--alpha-layers", "outside [0, 1]"}, out);
  expect_clean_failure(with({"--alpha", "0.5", "--alpha-layers", "0.1,0.2,0.3"}), {"not both"}, out);
  expect_clean_failure(with({"--ae-off", "7"}), {"--ae-off", "layer 7 is outside 0..2"}, out);
  expect_clean_failure({"trace", "--model", kBase, "--alpha", "0.5", "--prompt", "hi", "--out", out.string()},
                       {"--alpha", "applies to --superposition"}, out);
  expect_clean_failure({"trace", "--prompt", "hi", "--out", out.string()}, {"--model", "--superposition"}, out);
  // Mismatched experts.
  expect_clean_failure(with({"--base", kBase, "--fine", (kFixtures / "gpt2-tiny-bf16").string()}),
                       {"gpt2-tiny-bf16", "cannot be superposed"}, out);
  // A corrupted checkpoint.
  const std::string weights = superpose::read_file(fs::path(one) / "superposition.safetensors");
  superpose::write_file_atomic(fs::path(one) / "superposition.safetensors", weights.substr(0, 100));
  expect_clean_failure(trace, {"superposition.safetensors"}, out);
  expect_clean_failure({"audit", "--superposition", one}, {"superposition.safetensors"});
  // import-seed: foreign files, an occupied output directory, a bad layer list.
  const auto sp = dir_ / "new.sp";
  superpose::write_file_atomic(dir_ / "foreign.pt", "plain text");
  expect_clean_failure({"import-seed", "--checkpoint", (dir_ / "foreign.pt").string(), "--base", kBase, "--fine", kFine,
                        "--out", sp.string()},
                       {"foreign.pt", "not a torch.save archive"}, sp);
  expect_clean_failure({"import-seed", "--checkpoint", (kSeeds / "seed_2d.pt").string(), "--base", kBase, "--fine",
                        kFine, "--ae-layers", "1", "--out", sp.string()},
                       {"--ae-layers", "layer 1 has no autoencoder"}, sp);
  expect_clean_failure({"import-seed", "--checkpoint", (kSeeds / "seed_1d.pt").string(), "--base", kBase, "--fine",
                        (kFixtures / "gpt2-tiny-bf16").string(), "--out", sp.string()},
                       {"cannot be superposed"}, sp);
  expect_clean_failure({"import-seed", "--checkpoint", (kSeeds / "seed_1d.pt").string(), "--base", kBase, "--fine",
                        kFine, "--out", one},
                       {"exists and is not empty"});
  // A bad schedule.
  superpose::write_file_atomic(dir_ / "bad.json", R"({"schedule": [{"from": 0, "alpha": [0.5]}]})");
  expect_clean_failure({"generate", "--superposition", import("seed_2d.pt"), "--prompt", "hi", "--alpha-schedule",
                        (dir_ / "bad.json").string()},
                       {"bad.json", "segment 0", "3 values"});
}

}  // namespace
