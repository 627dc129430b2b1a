// superpose generate: sample a continuation, streaming tokens as they come.
#include <chrono>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

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
  Sampler sampler(o.sampling);
  if (!o.json) {
    std::fwrite(o.prompt.data(), 1, o.prompt.size(), stdout);
    std::fflush(stdout);
  }
  auto stream = [&](int64_t token) {
    if (!o.json) {
      // Raw bytes: a character split across tokens is completed by the next one.
      const std::string bytes = tokenizer.token_bytes(token);
      std::fwrite(bytes.data(), 1, bytes.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  };
  const auto start = std::chrono::steady_clock::now();
  const GenerateResult result =
      o.model.empty()
          ? generate(superposed.model, prompt, options, sampler, schedule,
                     [&](int64_t token, SuperposedGenerator&) { return stream(token); })
          : generate(single.model, prompt, options, sampler, stream);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (o.json) {
    nlohmann::json out = {{"prompt_ids", prompt},
                          {"ids", result.tokens},
                          {"text", tokenizer.decode(result.tokens)},
                          {"stop", reason_text(result.reason)}};
    if (o.model.empty()) out["causal"] = superposed.model->causal();
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::cout << "\n";
  }
  std::cerr << format("[%zu tokens in %.2f s, %.1f tokens/s, stopped: %s]\n", result.tokens.size(), seconds,
                      result.tokens.size() / std::max(seconds, 1e-9), reason_text(result.reason));
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
  command->add_flag("--json", o->json, "Print {prompt_ids, ids, text, stop} as JSON instead of streaming");
  add_device_options(*command, o->device);
  command->callback([o] { run_generate(*o); });
}

}  // namespace superpose::cli
