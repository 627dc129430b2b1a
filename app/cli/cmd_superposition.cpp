// superpose import-seed and superpose audit: bringing notebook checkpoints in,
// and checking that a superposition does not read the future.
#include <iostream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "app/cli/common.h"
#include "model/audit.h"
#include "model/dataset.h"
#include "model/errors.h"
#include "model/seed_import.h"

namespace superpose::cli {
namespace {

struct ImportOptions {
  std::string checkpoint, base, fine, ae_layers, embedding_blend = "mean-alpha", out;
};

void run_import(const ImportOptions& o) {
  SeedImportOptions options;
  options.embedding_blend = parse_embedding_blend(o.embedding_blend, "--embedding-blend");
  if (!o.ae_layers.empty()) options.ae_layers = parse_index_list(o.ae_layers, "--ae-layers");
  const SeedCheckpoint seed = read_seed_checkpoint(o.checkpoint);
  auto experts = load_experts(o.base, o.fine, torch::kCPU, torch::kFloat32);
  SuperposedModel model = superposition_from_seed(seed, experts.first.model, experts.second.model, options);
  SuperpositionSpec spec;
  spec.provenance = {{"source", "notebook checkpoint"},
                     {"checkpoint", o.checkpoint},
                     {"note", "centered convolution: non-causal, as trained by the notebooks"}};
  save_superposition(o.out, model, spec, o.base, o.fine);
  const auto& c = model->config();
  std::string layers;
  for (int64_t l : c.ae_layers) layers += (layers.empty() ? "" : ",") + std::to_string(l);
  std::cerr << "wrote " << o.out << ": " << variant_name(c.alpha.variant) << " superposition, K="
            << c.alpha.n_control << ", autoencoders at layers " << layers << " (bottleneck " << c.autoencoder.bottleneck
            << ", centered convolution: non-causal)\n";
}

struct AuditCliOptions {
  SuperpositionOptions superposition;
  AuditOptions audit;
  bool json = false;
  DeviceOptions device;
  std::string data;            // prompts for the generation gap
  int64_t generations = 0;     // per label
  int64_t prompt_tokens = 16;
  GenerationGapOptions gap;
};

// Prompts for the generation gap: the first `per_label` documents of each
// label that hold more than `tokens` tokens, each cut to EOS + its first
// `tokens` tokens.
std::vector<std::vector<int64_t>> gap_prompts(const AuditCliOptions& o, const Tokenizer& tokenizer) {
  std::vector<std::vector<int64_t>> prompts;
  int64_t taken[2] = {0, 0};
  for (const auto& doc : read_jsonl(o.data)) {
    if (taken[doc.label] >= o.generations) continue;
    auto ids = tokenizer.encode(doc.text);
    if (static_cast<int64_t>(ids.size()) <= o.prompt_tokens) continue;
    ids.resize(static_cast<size_t>(o.prompt_tokens));
    if (const auto eos = tokenizer.eos_id()) ids.insert(ids.begin(), *eos);
    prompts.push_back(std::move(ids));
    ++taken[doc.label];
  }
  if (prompts.empty()) {
    throw Error(o.data, "no document has more than " + std::to_string(o.prompt_tokens) + " tokens for a prompt");
  }
  return prompts;
}

void run_audit(const AuditCliOptions& o) {
  if (!o.superposition.given()) throw Error("--superposition", "required");
  if (o.audit.tokens < 2) throw Error("--tokens", "must be >= 2");
  auto loaded = o.superposition.load(o.device.parsed_device(), o.device.parsed_dtype());
  o.superposition.apply_overrides(loaded.model);
  std::optional<GenerationGap> gap;
  if (o.generations > 0) {
    if (o.data.empty()) throw Error("--generations", "needs --data FILE.jsonl for the prompts");
    if (o.prompt_tokens < 1) throw Error("--prompt-tokens", "must be >= 1");
    if (o.gap.new_tokens < 1) throw Error("--new-tokens", "must be >= 1");
    const Tokenizer tokenizer = load_tokenizer("", loaded.base.files.dir);
    gap = generation_gap(loaded.model, gap_prompts(o, tokenizer), o.gap);
  }
  const AuditResult r = audit_causality(loaded.model, o.audit);
  const std::string conv = conv_mode_name(loaded.model->config().autoencoder.conv);
  if (o.json) {
    nlohmann::json out = {{"causal", r.causal},       {"max_deviation", r.max_deviation}, {"tolerance", r.tolerance},
                          {"tokens", r.tokens},       {"probes", r.probes},               {"convolution", conv},
                          {"position", r.position},   {"state", r.state}};
    if (gap) {
      out["generation_gap"] = {{"ppl_generation", gap->ppl_generation},
                               {"ppl_teacher_forced", gap->ppl_teacher_forced},
                               {"tokens", gap->tokens},
                               {"sequences", gap->sequences}};
    }
    std::cout << out.dump() << "\n";
    return;
  }
  if (gap) {
    std::cout << format("generation gap: perplexity %.4g on its own %lld sampled tokens (%lld sequences) as generated, "
                        "%.4g teacher-forced (ratio %.3f)\n",
                        gap->ppl_generation, static_cast<long long>(gap->tokens),
                        static_cast<long long>(gap->sequences), gap->ppl_teacher_forced,
                        gap->ppl_generation / gap->ppl_teacher_forced);
  }
  if (r.causal) {
    std::cout << format("causal: outputs at positions <= t did not move when the tokens after t changed "
                        "(max deviation %.3g, tolerance %.3g; %lld cuts over %lld tokens; convolution %s)\n",
                        r.max_deviation, r.tolerance, static_cast<long long>(r.probes),
                        static_cast<long long>(r.tokens), conv.c_str());
  } else {
    std::cout << format("non-causal: changing the tokens after position %lld moved %s at positions <= %lld by %.4g "
                        "(tolerance %.3g; convolution %s)\n",
                        static_cast<long long>(r.position), r.state.c_str(), static_cast<long long>(r.position),
                        r.max_deviation, r.tolerance, conv.c_str());
  }
}

}  // namespace

void register_import_seed(CLI::App& app) {
  auto o = std::make_shared<ImportOptions>();
  auto* command = app.add_subcommand(
      "import-seed", "Convert a notebook checkpoint (torch.save of the α and autoencoder state dicts) into a "
                     "superposition directory");
  command->add_option("--checkpoint", o->checkpoint, "The notebook's .pt file")->required()->check(CLI::ExistingFile);
  command->add_option("--base", o->base, "Base expert (HF GPT-2 directory)")->required()->check(kExistingDir);
  command->add_option("--fine", o->fine, "Fine expert (HF GPT-2 directory)")->required()->check(kExistingDir);
  command->add_option("--ae-layers", o->ae_layers, "Autoencoder layers to keep, l,l,... (default: all in the file)");
  command->add_option("--embedding-blend", o->embedding_blend, "mean-alpha or base")->capture_default_str();
  command->add_option("--out", o->out, "Output directory (new or empty; written atomically)")->required();
  command->callback([o] { run_import(*o); });
}

void register_audit(CLI::App& app) {
  auto o = std::make_shared<AuditCliOptions>();
  auto* command = app.add_subcommand(
      "audit", "Causality audit: change the tokens after t and check that nothing at positions <= t moves");
  add_superposition_options(*command, o->superposition, true);
  command->add_option("--tokens", o->audit.tokens, "Sequence length to probe")->capture_default_str();
  command->add_option("--seed", o->audit.seed, "Seed for the random token ids")->capture_default_str();
  command->add_flag("--json", o->json, "Print {\"causal\", \"max_deviation\", ...} as JSON");
  command->add_option("--data", o->data, "JSONL documents whose beginnings prompt the generation gap")
      ->check(CLI::ExistingFile);
  command->add_option("--generations", o->generations,
                      "Also measure the generation gap: sample this many continuations per label and compare their "
                      "perplexity as generated with teacher-forced (0: off)")
      ->capture_default_str();
  command->add_option("--prompt-tokens", o->prompt_tokens, "Prompt length for the generation gap")
      ->capture_default_str();
  command->add_option("--new-tokens", o->gap.new_tokens, "Tokens sampled per continuation")->capture_default_str();
  add_device_options(*command, o->device);
  command->callback([o] { run_audit(*o); });
}

}  // namespace superpose::cli
