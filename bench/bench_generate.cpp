// Generation speed at batch 1: KV-cached decoding against full recomputation per token.
//
// The model has GPT-2 small's shape (12 layers, 12 heads, width 768, 50257
// tokens) with random weights: speed does not depend on the weight values.
// Each iteration generates kNewTokens greedily after a kPromptTokens prompt;
// the counter tokens_per_s is new tokens per second. SUPERPOSE_BENCH_DEVICE
// (cpu, cuda) and SUPERPOSE_BENCH_DTYPE (f32, bf16) choose where it runs.
#include <cstdlib>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "model/device.h"
#include "model/generate.h"

namespace {

constexpr int64_t kPromptTokens = 32;
constexpr int64_t kNewTokens = 64;

superpose::GPT2& gpt2_small() {
  static superpose::GPT2 model = [] {
    torch::manual_seed(0);
    superpose::GPT2 m(superpose::GPT2Config{});
    const char* device_name = std::getenv("SUPERPOSE_BENCH_DEVICE");
    const char* dtype_name = std::getenv("SUPERPOSE_BENCH_DTYPE");
    const auto device = superpose::parse_device(device_name != nullptr ? device_name : "cpu");
    m->to(device, superpose::parse_dtype(dtype_name != nullptr ? dtype_name : "f32", device));
    m->eval();
    // Load kernels and pick library algorithms before anything is timed.
    std::vector<int64_t> ids(kPromptTokens, 1);
    for (bool cache : {true, false}) {
      superpose::Sampler sampler(superpose::SamplingOptions{0.0, 0, 1.0, 0});
      superpose::generate(m, ids, superpose::GenerateOptions{4, cache, {}}, sampler);
    }
    return m;
  }();
  return model;
}

void run(benchmark::State& state, bool use_cache) {
  auto& model = gpt2_small();
  std::vector<int64_t> prompt(kPromptTokens);
  for (int64_t i = 0; i < kPromptTokens; ++i) prompt[static_cast<size_t>(i)] = (i * 7919) % 50257;
  superpose::GenerateOptions options;
  options.max_new_tokens = kNewTokens;
  options.use_cache = use_cache;
  int64_t produced = 0;
  for (auto _ : state) {
    superpose::Sampler sampler(superpose::SamplingOptions{0.0, 0, 1.0, 0});
    const auto result = superpose::generate(model, prompt, options, sampler);
    produced += static_cast<int64_t>(result.tokens.size());
  }
  state.counters["tokens_per_s"] = benchmark::Counter(static_cast<double>(produced), benchmark::Counter::kIsRate);
  state.counters["threads"] = at::get_num_threads();
}

void BM_GenerateKvCache(benchmark::State& state) { run(state, true); }
void BM_GenerateFullRecompute(benchmark::State& state) { run(state, false); }

BENCHMARK(BM_GenerateKvCache)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);
BENCHMARK(BM_GenerateFullRecompute)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);

}  // namespace

BENCHMARK_MAIN();
