// superpose generate: sample a continuation, streaming tokens as they come.
#include <chrono>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "analysis/diversity.h"
#include "app/cli/common.h"
#include "model/errors.h"
#include "model/generate.h"
#include "model/model_dir.h"
#include "model/superposed_generate.h"

namespace superpose::cli {
namespace {

struct GenerateCliOptions {
  std::string model;
  SuperpositionOptions superposition;
  std::string alpha_schedule;
  std::string tokenizer;
  std::string prompt;
  int64_t max_new_tokens = 50;
  SamplingOptions sampling;
  int64_t samples = 1;
  bool no_cache = false;
  bool json = false;
  DeviceOptions device;
};

const char* reason_text(StopReason reason) {
  switch (reason) {
    case StopReason::kMaxTokens: return "max new tokens";
    case StopReason::kStopToken: return "end-of-text token";
    case StopReason::kContextFull: return "context full";
    case StopReason::kCancelled: return "cancelled";
  }
  return "?";
}

void run_generate(const GenerateCliOptions& o) {
  validate(o.sampling);
  if (o.max_new_tokens < 1) throw Error("--max-new-tokens", "must be >= 1, got " + std::to_string(o.max_new_tokens));
  if (o.samples < 1) throw Error("--samples", "must be >= 1, got " + std::to_string(o.samples));
  if (o.model.empty() == o.superposition.superposition.empty()) {
    throw Error("--model", "give either --model DIR or --superposition DIR");
  }
  o.superposition.require_for("--model", o.model);
  if (!o.model.empty() && !o.alpha_schedule.empty()) {
    throw Error("--alpha-schedule", "applies to --superposition, not to --model");
  }
  const torch::Device device = o.device.parsed_device();
  const torch::Dtype dtype = o.device.parsed_dtype();

  // Exactly one of the two is loaded.
  LoadedModel single;
  LoadedSuperposition superposed;
  AlphaSchedule schedule;
  std::filesystem::path tokenizer_home;
  int64_t context = 0;
  if (!o.model.empty()) {
    single = load_model(o.model, device, dtype);
    tokenizer_home = o.model;
    context = single.config.n_positions;
  } else {
    superposed = o.superposition.load(device, dtype);
    o.superposition.apply_overrides(superposed.model);
    if (!o.alpha_schedule.empty()) schedule = AlphaSchedule::load(o.alpha_schedule, superposed.model->alpha_shape());
    tokenizer_home = superposed.base.files.dir;
    context = superposed.model->context();
    if (!superposed.model->causal()) {
      std::cerr << "note: " << o.superposition.superposition
                << " is non-causal (centered convolution); every token recomputes the whole sequence\n";
    }
  }
  const Tokenizer tokenizer = load_tokenizer(o.tokenizer, tokenizer_home);
  const auto prompt = encode_prompt(tokenizer, o.prompt, context);

  GenerateOptions options;
  options.max_new_tokens = o.max_new_tokens;
  options.use_cache = !o.no_cache;
  options.stop_token = tokenizer.eos_id();
  auto stream = [&](int64_t token) {
    if (!o.json) {
      // Raw bytes: a character split across tokens is completed by the next one.
      const std::string bytes = tokenizer.token_bytes(token);
      std::fwrite(bytes.data(), 1, bytes.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  };
  // Sample i uses seed + i, so any one of them can be rerun alone.
  nlohmann::json samples = nlohmann::json::array();
  std::vector<std::vector<int64_t>> generations;
  for (int64_t i = 0; i < o.samples; ++i) {
    SamplingOptions sampling = o.sampling;
    sampling.seed = o.sampling.seed + static_cast<uint64_t>(i);
    Sampler sampler(sampling);
    if (!o.json) {
      if (o.samples > 1) std::cout << format("--- sample %lld (seed %llu) ---\n", static_cast<long long>(i + 1),
                                             static_cast<unsigned long long>(sampling.seed));
      std::cout << std::flush;
      std::fwrite(o.prompt.data(), 1, o.prompt.size(), stdout);
      std::fflush(stdout);
    }
    const auto start = std::chrono::steady_clock::now();
    const GenerateResult result =
        o.model.empty()
            ? generate(superposed.model, prompt, options, sampler, schedule,
                       [&](int64_t token, SuperposedGenerator&) { return stream(token); })
            : generate(single.model, prompt, options, sampler, stream);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    nlohmann::json out = {{"prompt_ids", prompt},
                          {"ids", result.tokens},
                          {"text", tokenizer.decode(result.tokens)},
                          {"stop", reason_text(result.reason)}};
    if (o.model.empty()) out["causal"] = superposed.model->causal();
    if (o.samples > 1) out["seed"] = sampling.seed;
    samples.push_back(out);
    generations.push_back(result.tokens);
    if (!o.json) std::cout << "\n";
    std::cerr << format("[%zu tokens in %.2f s, %.1f tokens/s, stopped: %s]\n", result.tokens.size(), seconds,
                        result.tokens.size() / std::max(seconds, 1e-9), reason_text(result.reason));
  }
  const auto dump = [](const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); };
  if (o.samples == 1) {
    if (o.json) std::cout << dump(samples[0]) << "\n";
    return;
  }
  // Several samples: how diverse they are (distinct-n, n-gram entropy, self-BLEU over token ids).
  const DiversityReport diversity = diversity_report(generations);
  if (o.json) {
    std::cout << dump({{"samples", samples}, {"diversity", to_json(diversity)}}) << "\n";
  } else {
    std::cerr << format("diversity over %lld samples: distinct-1 %.3f, distinct-2 %.3f, self-BLEU-4 %.3f, "
                        "2-gram entropy %.3f nats\n",
                        static_cast<long long>(diversity.generations), diversity.distinct[0].corpus,
                        diversity.distinct[1].corpus, diversity.self_bleu, diversity.entropy[1].nats);
  }
}

}  // namespace

void register_generate(CLI::App& app) {
  auto o = std::make_shared<GenerateCliOptions>();
  auto* command = app.add_subcommand("generate", "Continue a prompt with a model or a superposition, streaming tokens to stdout");
  command->add_option("--model", o->model, "HF GPT-2 directory")->check(kExistingDir);
  add_superposition_options(*command, o->superposition, true);
  command->add_option("--alpha-schedule", o->alpha_schedule,
                      "JSON file: α over positions, {\"schedule\": [{\"from\": 0, \"alpha\": 0.0}, ...]}");
  command->add_option("--tokenizer", o->tokenizer, "Directory with vocab.json + merges.txt")->check(kExistingDir);
  command->add_option("--prompt", o->prompt, "Text to continue")->required();
  command->add_option("--max-new-tokens", o->max_new_tokens, "Tokens to generate")->capture_default_str();
  command->add_option("--temperature", o->sampling.temperature, "Softmax temperature; 0 = greedy")
      ->capture_default_str();
  command->add_option("--top-k", o->sampling.top_k, "Keep the k most likely tokens; 0 = all")->capture_default_str();
  command->add_option("--top-p", o->sampling.top_p, "Nucleus: keep the smallest set reaching p")->capture_default_str();
  command->add_option("--seed", o->sampling.seed, "Random seed (same seed, same tokens)")->capture_default_str();
  command->add_flag("--no-cache", o->no_cache, "Recompute the whole sequence for every token (slow; for checking)");
  command->add_option("--samples", o->samples,
                      "Continuations to sample (seeds seed, seed+1, ...); from 2 on, their diversity is reported")
      ->capture_default_str();
  command->add_flag("--json", o->json,
                    "Print {prompt_ids, ids, text, stop} as JSON instead of streaming; with --samples N > 1, "
                    "{samples: [...], diversity: {distinct, entropy, self_bleu}}");
  add_device_options(*command, o->device);
  command->callback([o] { run_generate(*o); });
}

}  // namespace superpose::cli
