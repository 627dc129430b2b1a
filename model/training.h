// The training loop shared by pretraining, fine-tuning and superposition
// training: seeded data order, AdamW with per-group learning rates and
// clipping, a learning-rate schedule, bf16 autocast on CUDA, a progress line,
// metrics as JSONL, periodic and Ctrl-C checkpoints, and exact resumption.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "model/dataset.h"

namespace torch::optim {
class Optimizer;
}

namespace superpose {

// How the learning rate moves over the run: `constant`, or linear warm-up
// over `warmup` steps then cosine decay to min_lr_ratio·lr at the last step.
enum class LrSchedule { kConstant, kCosine };
LrSchedule parse_lr_schedule(const std::string& name, const std::string& where);
std::string lr_schedule_name(LrSchedule schedule);
// The multiplier of the base learning rate at `step` (0-based) of `total`.
double lr_factor(LrSchedule schedule, int64_t step, int64_t total, int64_t warmup, double min_lr_ratio);

struct TrainingOptions {
  int64_t epochs = 1;            // passes over the training windows
  int64_t max_steps = 0;         // > 0: stop after this many steps (may cut or extend epochs)
  int64_t batch_size = 32;       // windows per step (the last partial batch of an epoch is dropped)
  LrSchedule schedule = LrSchedule::kConstant;
  int64_t warmup = 0;
  double min_lr_ratio = 0.1;
  double weight_decay = 0.01;    // AdamW
  double clip = 1.0;             // gradient-norm clipping, per parameter group; <= 0: none
  uint64_t seed = 0;             // data order, initialisation, dropout
  int64_t checkpoint_every = 0;  // steps between checkpoints; 0: only at the end and on Ctrl-C
  int64_t log_every = 10;        // steps between metric lines
  int64_t validate_every = 0;    // steps between validations; 0: at the end of each epoch
  int64_t validation_batches = 0;  // 0: the whole validation set
  torch::Device device = torch::kCPU;
  bool bf16 = false;             // autocast to bfloat16 (CUDA only)
  bool progress = true;          // the progress line on stderr
  bool keep_checkpoints = false; // keep checkpoint-* folders after a completed run

  nlohmann::json to_json() const;
};

// Throws Error naming the option for a value out of range.
void validate(const TrainingOptions& options);

// One step's loss: `total` is what is minimised, `parts` what gets logged.
struct StepLoss {
  torch::Tensor total;
  std::map<std::string, torch::Tensor> parts;  // scalars, e.g. {"lm": ..., "recon": ...}
};

// What a training command trains. The loop owns the optimizer and the data;
// the objective owns the model.
class Objective {
 public:
  struct Group {
    std::string name;
    std::vector<torch::Tensor> parameters;
    double lr;
    double weight_decay;
  };
  virtual ~Objective() = default;
  // Parameter groups with their base learning rates.
  virtual std::vector<Group> groups() = 0;
  // The loss on a batch already on the device (called inside autocast when bf16).
  virtual StepLoss loss(const Batch& batch) = 0;
  virtual void train_mode(bool on) = 0;
  // Writes the model's weights (and whatever else it needs to reload) into `dir`.
  virtual void save(const std::filesystem::path& dir) = 0;
  // Restores what save() wrote. Throws Error on a mismatch.
  virtual void load(const std::filesystem::path& dir) = 0;
  // Writes the final model into `out` (an existing folder), each file atomically.
  virtual void save_final(const std::filesystem::path& out, const nlohmann::json& provenance) = 0;
};

// Set by SIGINT while a Trainer runs (the handler is installed by run() and
// restored after); tests may set it to interrupt a run between steps.
std::atomic<bool>& interrupt_requested();

struct TrainingResult {
  int64_t steps = 0;          // global steps done, including earlier runs when resumed
  int64_t total_steps = 0;
  bool interrupted = false;   // stopped by Ctrl-C; a checkpoint was written
  double seconds = 0;         // this run's wall time
  double tokens_per_second = 0;
  std::vector<double> losses;  // this run's step losses, in order
  nlohmann::json last_validation;  // {"domains": {...}} of the last validation, or null
  std::filesystem::path checkpoint;  // the newest checkpoint folder, if any remains
};

// Runs the loop on `train`, validating on `validation` (may be empty).
//
// Output folder `out`: metrics.jsonl (one JSON object per line: step lines
// {"step","epoch","lr","loss",<parts>,"tokens_per_s","elapsed_s"},
// validation lines {"event":"validation","step","epoch","domains":{name:
// {"loss","ppl","tokens",<parts>}}}), checkpoint-<step>/ folders (the
// objective's files + optimizer.pt + trainer.json), and at the end the
// objective's final files and training.json (options, data, seeds, steps,
// time, device, last validation, plus `provenance`).
// `out` must not exist or be empty unless `resume`; with `resume` the newest
// complete checkpoint is loaded (its options must match: seed, batch size,
// steps, data) and the run continues exactly where it stopped: the same
// batches, learning rates and dropout masks, so the same losses.
// Throws Error for bad options, a busy `out`, or a checkpoint that does not fit.
TrainingResult train(Objective& objective, const TokenDataset& train, const TokenDataset* validation,
                     const std::vector<std::string>& domain_names, const TrainingOptions& options,
                     const std::filesystem::path& out, bool resume, nlohmann::json provenance);

// Per-domain validation: mean loss parts and token-weighted LM loss.
nlohmann::json validate_objective(Objective& objective, const TokenDataset& data,
                                  const std::vector<std::string>& domain_names, const TrainingOptions& options);

// Autocast to bfloat16 on CUDA for the guard's lifetime (LibTorch 1.13 and
// 2.x); a no-op when `enabled` is false or the device is not CUDA.
class AutocastGuard {
 public:
  AutocastGuard(torch::Device device, bool enabled);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  bool previous_ = false;
};

// Next-token cross-entropy over the targets that are not Batch::kIgnoreIndex,
// in float32. (B,T,V) logits, (B,T) targets.
torch::Tensor lm_loss(const torch::Tensor& logits, const torch::Tensor& targets);

// Removes a folder and everything in it (POSIX; no error if missing).
void remove_tree(const std::filesystem::path& dir);

}  // namespace superpose
