// superpose pretrain / finetune / train: the training commands. They share
// the loop (model/training.h): progress line, metrics.jsonl, checkpoints
// every N steps and on Ctrl-C, --resume, bf16 autocast on CUDA.
#include <ctime>
#include <iostream>
#include <optional>

#include <torch/torch.h>

#include "app/cli/common.h"
#include "model/dataset.h"
#include "model/device.h"
#include "model/errors.h"
#include "model/lm_training.h"
#include "model/model_dir.h"
#include "model/superposition_training.h"

namespace superpose::cli {
namespace {

struct LoopCliOptions {
  std::string data, validation, out;
  int64_t label = -1;
  int64_t seq_len = 128;
  int64_t max_documents = 0;
  std::string device = "auto";
  std::string precision = "auto";
  std::string schedule;
  std::string lr;
  bool resume = false;
  bool quiet = false;
  TrainingOptions loop;
};

void add_loop_options(CLI::App& command, LoopCliOptions& o, bool with_label, const char* schedule_default) {
  o.schedule = schedule_default;
  command.add_option("--data", o.data, "training documents, JSONL {\"text\", \"label\"}")->required();
  command.add_option("--validation", o.validation, "validation documents (JSONL), evaluated per domain");
  command.add_option("--out", o.out, "output folder (new or empty; or a run to --resume)")->required();
  if (with_label) command.add_option("--label", o.label, "train only on documents with this label (0 or 1)");
  command.add_option("--seq-len", o.seq_len, "tokens per training window")->capture_default_str();
  command.add_option("--max-documents", o.max_documents, "use at most this many documents of each file (0: all)");
  command.add_option("--epochs", o.loop.epochs, "passes over the training windows")->capture_default_str();
  command.add_option("--steps", o.loop.max_steps, "stop after this many steps (overrides --epochs)");
  command.add_option("--batch-size", o.loop.batch_size, "windows per step")->capture_default_str();
  command.add_option("--schedule", o.schedule, "learning-rate schedule: constant or cosine")->capture_default_str();
  command.add_option("--warmup", o.loop.warmup, "linear warm-up steps")->capture_default_str();
  command.add_option("--min-lr-ratio", o.loop.min_lr_ratio, "cosine floor, as a share of the learning rate")
      ->capture_default_str();
  command.add_option("--weight-decay", o.loop.weight_decay, "AdamW weight decay")->capture_default_str();
  command.add_option("--clip", o.loop.clip, "gradient-norm clipping per parameter group (0: off)")->capture_default_str();
  command.add_option("--seed", o.loop.seed, "seed of initialisation, data order and dropout")->capture_default_str();
  command.add_option("--checkpoint-every", o.loop.checkpoint_every, "steps between checkpoints (0: end and Ctrl-C only)")
      ->capture_default_str();
  command.add_option("--log-every", o.loop.log_every, "steps between metrics.jsonl lines")->capture_default_str();
  command.add_option("--validate-every", o.loop.validate_every, "steps between validations (0: every epoch)")
      ->capture_default_str();
  command.add_option("--validation-batches", o.loop.validation_batches, "batches per domain and validation (0: all)")
      ->capture_default_str();
  command.add_option("--device", o.device, "auto (CUDA when present), cpu, cuda or cuda:N")->capture_default_str();
  command.add_option("--precision", o.precision, "auto (bf16 autocast on CUDA), f32 or bf16")->capture_default_str();
  command.add_flag("--resume", o.resume, "continue the run in --out from its newest checkpoint");
  command.add_flag("--keep-checkpoints", o.loop.keep_checkpoints, "keep the last checkpoint after the run completes");
  command.add_flag("--quiet", o.quiet, "no progress line");
}

// Resolves device/precision/schedule into o.loop and checks the ranges.
void finish_loop_options(LoopCliOptions& o) {
  if (o.device == "auto") {
    o.loop.device = torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  } else {
    DeviceOptions device;
    device.device = o.device;
    o.loop.device = device.parsed_device();
  }
  if (o.precision == "auto") {
    o.loop.bf16 = o.loop.device.is_cuda();
  } else if (o.precision == "f32" || o.precision == "bf16") {
    o.loop.bf16 = o.precision == "bf16";
  } else {
    throw Error("--precision", "'" + o.precision + "' is not one of auto, f32, bf16");
  }
  o.loop.schedule = parse_lr_schedule(o.schedule, "--schedule");
  o.loop.progress = !o.quiet;
  if (o.seq_len < 1) throw Error("--seq-len", "must be at least 1");
  if (o.label != -1 && o.label != 0 && o.label != 1) throw Error("--label", "must be 0 or 1");
  if (o.max_documents < 0) throw Error("--max-documents", "must not be negative");
  validate(o.loop);
}

std::vector<Document> read_documents(const std::string& path, const LoopCliOptions& o, const char* option) {
  auto all = read_jsonl(path);
  std::vector<Document> kept;
  for (auto& document : all) {
    if (o.label != -1 && document.label != o.label) continue;
    if (o.max_documents > 0 && static_cast<int64_t>(kept.size()) >= o.max_documents) break;
    kept.push_back(std::move(document));
  }
  if (kept.empty()) {
    throw Error(path, std::string("has no documents") + (o.label != -1 ? " with label " + std::to_string(o.label) : "") +
                          " (" + option + ")");
  }
  return kept;
}

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return text;
}

torch::Dtype parse_storage(const std::string& name) {
  if (name == "f32") return torch::kFloat32;
  if (name == "f16") return torch::kFloat16;
  if (name == "bf16") return torch::kBFloat16;
  throw Error("--save-dtype", "'" + name + "' is not one of f32, f16, bf16");
}

// Tokenizes, runs the loop, reports. Returns when the run completes; an
// interrupted run exits with status 130 after its checkpoint.
void run_loop(Objective& objective, const Tokenizer& tokenizer, LoopCliOptions& o, nlohmann::json provenance) {
  const auto train_docs = read_documents(o.data, o, "--data");
  std::vector<Document> validation_docs;
  if (!o.validation.empty()) validation_docs = read_documents(o.validation, o, "--validation");
  auto names = domain_names(train_docs);
  const auto train_data = TokenDataset::build(train_docs, tokenizer, o.seq_len);
  std::optional<TokenDataset> validation;
  if (!validation_docs.empty()) validation = TokenDataset::build(validation_docs, tokenizer, o.seq_len);
  provenance["data"] = o.data;
  provenance["validation_data"] = o.validation;
  provenance["documents"] = train_docs.size();
  provenance["train_tokens"] = train_data.target_count(0) + train_data.target_count(1);
  nlohmann::json trained_domains = nlohmann::json::array();  // the labels the run saw
  for (int64_t label = 0; label < 2; ++label) {
    if (train_data.target_count(label) > 0) trained_domains.push_back(names[static_cast<size_t>(label)]);
  }
  provenance["domains"] = trained_domains;
  provenance["finished"] = now_utc();
  provenance["torch"] = TORCH_VERSION;
  if (o.loop.progress) {
    std::cerr << format("training on %zu documents (%lld tokens, %zu windows of %lld) on %s%s\n", train_docs.size(),
                        static_cast<long long>(train_data.target_count(0) + train_data.target_count(1)), train_data.size(),
                        static_cast<long long>(o.seq_len), o.loop.device.str().c_str(),
                        o.loop.bf16 ? " with bf16 autocast" : "");
  }
  const auto result = train(objective, train_data, validation ? &*validation : nullptr, names, o.loop, o.out, o.resume,
                            provenance);
  if (result.interrupted) {
    std::cerr << format("interrupted at step %lld of %lld; checkpoint %s; continue with the same command and --resume\n",
                        static_cast<long long>(result.steps), static_cast<long long>(result.total_steps),
                        result.checkpoint.string().c_str());
    throw ExitStatus{130};
  }
  std::cout << format("trained %lld steps in %.1f s (%.0f tokens/s); wrote %s\n", static_cast<long long>(result.steps),
                      result.seconds, result.tokens_per_second, o.out.c_str());
}

// The options pretrain and finetune share beyond the loop's.
void add_language_model_options(CLI::App& command, double& lr, std::string& save_dtype) {
  command.add_option("--lr", lr, "peak learning rate")->capture_default_str();
  command.add_option("--save-dtype", save_dtype, "dtype of the final model.safetensors: f32, f16, bf16")
      ->capture_default_str();
}

}  // namespace

void register_pretrain(CLI::App& app) {
  struct Options {
    LoopCliOptions loop;
    std::string tokenizer, save_dtype = "f32";
    GPT2Config config;
    double lr = 6e-4;
  };
  auto o = std::make_shared<Options>();
  o->config.n_layer = 6;
  o->config.n_head = 6;
  o->config.n_embd = 192;
  o->config.n_positions = 256;
  o->loop.loop.warmup = 200;
  auto* command = app.add_subcommand("pretrain", "train a GPT-2 from scratch on a corpus; writes an HF GPT-2 folder");
  add_loop_options(*command, o->loop, true, "cosine");
  command->add_option("--tokenizer", o->tokenizer, "folder with vocab.json + merges.txt (vocabulary size follows it)")
      ->required()
      ->check(kExistingDir);
  command->add_option("--n-layer", o->config.n_layer, "blocks")->capture_default_str();
  command->add_option("--n-embd", o->config.n_embd, "width")->capture_default_str();
  command->add_option("--n-head", o->config.n_head, "attention heads")->capture_default_str();
  command->add_option("--n-positions", o->config.n_positions, "context length")->capture_default_str();
  add_language_model_options(*command, o->lr, o->save_dtype);
  command->callback([o] {
    finish_loop_options(o->loop);
    const auto storage = parse_storage(o->save_dtype);
    const Tokenizer tokenizer = load_tokenizer(o->tokenizer, std::nullopt);
    auto config = o->config;
    config.vocab_size = tokenizer.vocab_size();
    const auto eos = tokenizer.eos_id();
    config.bos_token_id = config.eos_token_id = eos.value_or(0);
    if (config.n_layer < 1 || config.n_embd < 1 || config.n_head < 1 || config.n_embd % config.n_head != 0) {
      throw Error("--n-embd", "must be a positive multiple of --n-head, with --n-layer >= 1");
    }
    if (o->loop.seq_len > config.n_positions) throw Error("--seq-len", "exceeds --n-positions");
    torch::manual_seed(o->loop.loop.seed);
    GPT2 model(config);
    init_gpt2_weights(model);
    model->to(o->loop.loop.device);
    LanguageModelObjective objective(model, resolve_tokenizer_dir(std::filesystem::path(o->tokenizer), std::nullopt),
                                     o->lr, o->loop.loop.weight_decay, storage);
    nlohmann::json provenance{{"command", "pretrain"}, {"tokenizer", o->tokenizer}, {"lr", o->lr},
                              {"label", o->loop.label}, {"parameters", gpt2_parameter_count(config)}};
    run_loop(objective, tokenizer, o->loop, provenance);
  });
}

void register_finetune(CLI::App& app) {
  struct Options {
    LoopCliOptions loop;
    std::string model, save_dtype = "f32", freeze;
    double lr = 1e-4;
  };
  auto o = std::make_shared<Options>();
  o->loop.loop.warmup = 50;
  auto* command = app.add_subcommand("finetune", "continue training an HF GPT-2 on another corpus; writes an HF GPT-2 folder");
  add_loop_options(*command, o->loop, true, "cosine");
  command->add_option("--model", o->model, "the HF GPT-2 folder to start from")->required()->check(kExistingDir);
  add_language_model_options(*command, o->lr, o->save_dtype);
  command->add_option("--freeze", o->freeze,
                      "parameters kept as they are, by name prefix, e.g. wte,wpe,ln_f (the tied output head is wte)");
  command->callback([o] {
    finish_loop_options(o->loop);
    const auto storage = parse_storage(o->save_dtype);
    const auto frozen = parse_name_list(o->freeze);
    auto loaded = load_model(o->model, o->loop.loop.device, torch::kFloat32);
    const auto tokenizer_dir = resolve_tokenizer_dir(std::nullopt, std::filesystem::path(o->model));
    const Tokenizer tokenizer = Tokenizer::from_dir(tokenizer_dir);
    LanguageModelObjective objective(loaded.model, tokenizer_dir, o->lr, o->loop.loop.weight_decay, storage, frozen);
    nlohmann::json provenance{{"command", "finetune"}, {"from", o->model}, {"lr", o->lr}, {"label", o->loop.label},
                              {"frozen", frozen}};
    run_loop(objective, tokenizer, o->loop, provenance);
  });
}

void register_train(CLI::App& app) {
  struct Options {
    LoopCliOptions loop;
    std::string base, fine, variant = "1d", chain = "teacher", conv = "causal", ae_layers, embedding_blend = "mean-alpha",
                save_dtype = "f32";
    int64_t control_points = 16, degree = 3, bottleneck = 0;
    double lr_alpha = 2e-4, lr_ae = 1e-4;
    std::optional<double> recon_weight, lm_weight;
  };
  auto o = std::make_shared<Options>();
  auto* command = app.add_subcommand("train", "train a superposition of two experts (SPEC §5); writes a superposition folder");
  add_loop_options(*command, o->loop, false, "constant");
  command->add_option("--base", o->base, "the base expert (HF GPT-2 folder; label 0)")->required()->check(kExistingDir);
  command->add_option("--fine", o->fine, "the fine expert (HF GPT-2 folder; label 1)")->required()->check(kExistingDir);
  command->add_option("--variant", o->variant, "1d (α per layer) or 2d (α per layer and dimension)")->capture_default_str();
  command->add_option("--chain", o->chain, "teacher (the next block reads the blend) or free (the reconstruction)")
      ->capture_default_str();
  command->add_option("--conv", o->conv, "autoencoder convolution: causal or centered (non-causal, notebook-compatible)")
      ->capture_default_str();
  command->add_option("--ae-layers", o->ae_layers, "blocks with an autoencoder, e.g. 0,1,2 (default: all)");
  command->add_option("--embedding-blend", o->embedding_blend, "mean-alpha or base")->capture_default_str();
  command->add_option("--bottleneck", o->bottleneck,
                      "autoencoder width Z (default: SPEC §3's, int(0.75 C) for 1d, int(0.65 C) for 2d); "
                      "from 2 C on, a 1D autoencoder can represent the identity")
      ->check(CLI::PositiveNumber);
  command->add_option("--control-points", o->control_points, "B-spline control points K")->capture_default_str();
  command->add_option("--degree", o->degree, "B-spline degree")->capture_default_str();
  command->add_option("--lr-alpha", o->lr_alpha, "learning rate of α")->capture_default_str();
  command->add_option("--lr-ae", o->lr_ae, "learning rate of the autoencoders")->capture_default_str();
  command->add_option("--recon-weight", o->recon_weight,
                      "weight of the reconstruction loss (default: SPEC §5's, 3 for 1d and 1 for 2d)")
      ->check(CLI::NonNegativeNumber);
  command->add_option("--lm-weight", o->lm_weight,
                      "weight of the language-model loss (default: SPEC §5's, 1 for 1d and 0.2 for 2d)")
      ->check(CLI::NonNegativeNumber);
  command->add_option("--save-dtype", o->save_dtype,
                      "dtype of the final autoencoder weights: f32, f16, bf16 (α stays f32; checkpoints are f32)")
      ->capture_default_str();
  command->callback([o] {
    finish_loop_options(o->loop);
    const auto storage = parse_storage(o->save_dtype);
    const auto variant = parse_variant(o->variant, "--variant");
    const auto chain = parse_chain(o->chain, "--chain");
    const auto conv = parse_conv_mode(o->conv, "--conv");
    auto experts = load_experts(o->base, o->fine, o->loop.loop.device, torch::kFloat32);
    auto config = SuperposedConfig::defaults(variant, experts.first.config, conv);
    if (o->bottleneck > 0) {
      config.autoencoder = AutoencoderConfig::defaults(variant, experts.first.config.n_embd, conv, o->bottleneck);
    }
    config.alpha.n_control = o->control_points;
    config.alpha.degree = o->degree;
    if (!o->ae_layers.empty()) config.ae_layers = parse_index_list(o->ae_layers, "--ae-layers");
    config.embedding_blend = parse_embedding_blend(o->embedding_blend, "--embedding-blend");
    validate(config.autoencoder, "--bottleneck");
    validate(config, "--ae-layers");
    torch::manual_seed(o->loop.loop.seed);
    SuperposedModel model(experts.first.model, experts.second.model, config);
    model->to_device(o->loop.loop.device, torch::kFloat32);
    SuperpositionTrainingSettings settings;
    settings.chain = chain;
    settings.lr_alpha = o->lr_alpha;
    settings.lr_autoencoders = o->lr_ae;
    settings.weight_decay = o->loop.loop.weight_decay;
    settings.weights = SuperpositionLossWeights::defaults(variant);
    settings.storage = storage;
    if (o->recon_weight) settings.weights.recon = *o->recon_weight;
    if (o->lm_weight) settings.weights.lm = *o->lm_weight;
    if (settings.weights.recon == 0 && settings.weights.lm == 0) {
      throw Error("--recon-weight", "and --lm-weight are both 0: nothing would be trained");
    }
    SuperpositionObjective objective(model, o->base, o->fine, settings);
    const Tokenizer tokenizer = Tokenizer::from_dir(resolve_tokenizer_dir(std::nullopt, std::filesystem::path(o->base)));
    nlohmann::json provenance{{"command", "train"},  {"chain", chain_name(chain)},
                              {"lr_alpha", o->lr_alpha}, {"lr_ae", o->lr_ae},
                              {"loss_weights", settings.weights.to_json()}};
    run_loop(objective, tokenizer, o->loop, provenance);
  });
}

}  // namespace superpose::cli
