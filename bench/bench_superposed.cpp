// Superposed generation at batch 1: the per-expert KV cache against
// recomputing the whole prefix for every token (the notebooks' loop), and the
// latency from an α change to the first token generated under it.
//
// Two experts of one shape with random weights (speed does not depend on the
// values) and a causal 1D superposition with an autoencoder at every layer.
// Environment: SUPERPOSE_BENCH_SHAPE = small (6 layers, width 384, 6 heads;
// default) or gpt2-small (12 layers, 768, 12 heads); SUPERPOSE_BENCH_DEVICE =
// cpu (default) or cuda; SUPERPOSE_BENCH_DTYPE = f32 (default) or bf16;
// SUPERPOSE_BENCH_AE = on (default) or off (every autoencoder switched off);
// SUPERPOSE_BENCH_CUDNN_BENCHMARK = 1 lets cuDNN time its algorithms.
// Each iteration generates kNewTokens greedily after a kPromptTokens prompt;
// tokens_per_s counts new tokens.
#include <cstdlib>
#include <string>

#include <benchmark/benchmark.h>
#include <torch/torch.h>
#if __has_include(<torch/csrc/autograd/profiler_legacy.h>)
#include <torch/csrc/autograd/profiler_legacy.h>
#endif

#include "bench/bench_env.h"
#include "model/device.h"
#include "model/superposed_generate.h"

namespace {

constexpr int64_t kPromptTokens = 32;
constexpr int64_t kNewTokens = 64;

using superpose::bench::env;

std::vector<int64_t> prompt();

// Loads kernels and picks library algorithms before anything is timed: a
// slow first iteration would otherwise be the whole measurement.
void warm_up(superpose::SuperposedModel& model) {
  superpose::GenerateOptions options;
  options.max_new_tokens = 4;
  for (bool cache : {true, false}) {
    options.use_cache = cache;
    superpose::Sampler sampler(superpose::SamplingOptions{0.0, 0, 1.0, 0});
    superpose::generate(model, prompt(), options, sampler);
  }
}

superpose::SuperposedModel& superposition() {
  static superpose::SuperposedModel model = [] {
    const superpose::GPT2Config config = superpose::bench::shape();
    const auto device = superpose::parse_device(env("SUPERPOSE_BENCH_DEVICE", "cpu"));
    const auto dtype = superpose::parse_dtype(env("SUPERPOSE_BENCH_DTYPE", "f32"), device);
    if (env("SUPERPOSE_BENCH_CUDNN_BENCHMARK", "0") == "1") at::globalContext().setBenchmarkCuDNN(true);
    torch::manual_seed(0);
    superpose::GPT2 base(config), fine(config);
    base->to(device, dtype);
    fine->to(device, dtype);
    base->eval();
    fine->eval();
    superpose::SuperposedModel m(base, fine,
                                 superpose::SuperposedConfig::defaults(superpose::AlphaVariant::k1D, config));
    m->eval();
    if (env("SUPERPOSE_BENCH_AE", "on") == "off") {
      for (int64_t l = 0; l < m->n_layer(); ++l) m->set_autoencoder_enabled(l, false);
    }
    warm_up(m);
#if __has_include(<torch/csrc/autograd/profiler_legacy.h>)
    // SUPERPOSE_BENCH_PROFILE=FILE: a chrome trace of a few cached steps.
    if (const char* trace = std::getenv("SUPERPOSE_BENCH_PROFILE")) {
      torch::autograd::profiler::RecordProfile profile(trace);
      superpose::GenerateOptions options;
      options.max_new_tokens = 3;
      superpose::Sampler sampler(superpose::SamplingOptions{0.0, 0, 1.0, 0});
      superpose::generate(m, prompt(), options, sampler);
    }
#endif
    return m;
  }();
  return model;
}

std::vector<int64_t> prompt() {
  std::vector<int64_t> ids(kPromptTokens);
  for (int64_t i = 0; i < kPromptTokens; ++i) ids[static_cast<size_t>(i)] = (i * 7919) % 50257;
  return ids;
}

void label(benchmark::State& state) {
  state.SetLabel(env("SUPERPOSE_BENCH_SHAPE", "small") + " " + env("SUPERPOSE_BENCH_DEVICE", "cpu") + " " +
                 env("SUPERPOSE_BENCH_DTYPE", "f32") + (env("SUPERPOSE_BENCH_AE", "on") == "off" ? " no-AE" : ""));
  state.counters["threads"] = at::get_num_threads();
}

void run(benchmark::State& state, bool use_cache) {
  auto& model = superposition();
  superpose::GenerateOptions options;
  options.max_new_tokens = kNewTokens;
  options.use_cache = use_cache;
  int64_t produced = 0;
  for (auto _ : state) {
    superpose::Sampler sampler(superpose::SamplingOptions{0.0, 0, 1.0, 0});
    produced += static_cast<int64_t>(superpose::generate(model, prompt(), options, sampler).tokens.size());
  }
  state.counters["tokens_per_s"] = benchmark::Counter(static_cast<double>(produced), benchmark::Counter::kIsRate);
  label(state);
}

void BM_SuperposedKvCache(benchmark::State& state) { run(state, true); }
void BM_SuperposedFullRecompute(benchmark::State& state) { run(state, false); }

// Time from set_alpha to the first token sampled under the new α, halfway
// through a generation: "switch from here" (cached past kept) or with an
// explicit re-prefill of the whole sequence.
void alpha_switch(benchmark::State& state, bool reprefill) {
  auto& model = superposition();
  superpose::Sampler sampler(superpose::SamplingOptions{0.0, 0, 1.0, 0});
  superpose::SuperposedGenerator generator(model, prompt(), true);
  for (int i = 0; i < kNewTokens / 2; ++i) generator.append(sampler.sample(generator.next_logits()));
  double value = 0.0;
  for (auto _ : state) {
    model->set_alpha(value);
    value = value > 0.5 ? 0.0 : 1.0;
    if (reprefill) generator.reprefill();
    const int64_t token = sampler.sample(generator.next_logits());
    benchmark::DoNotOptimize(token);
    state.PauseTiming();
    if (generator.full()) generator = superpose::SuperposedGenerator(model, prompt(), true);
    generator.append(token);
    state.ResumeTiming();
  }
  label(state);
}

void BM_AlphaChangeToNextToken(benchmark::State& state) { alpha_switch(state, false); }
void BM_AlphaChangeWithReprefill(benchmark::State& state) { alpha_switch(state, true); }

BENCHMARK(BM_SuperposedKvCache)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);
BENCHMARK(BM_SuperposedFullRecompute)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);
BENCHMARK(BM_AlphaChangeToNextToken)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_AlphaChangeWithReprefill)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
