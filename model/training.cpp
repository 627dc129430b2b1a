// The shared training loop.
#include "model/training.h"

#include <dirent.h>
#include <ftw.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include "model/errors.h"
#include "model/file_util.h"

namespace superpose {

namespace fs = std::filesystem;

LrSchedule parse_lr_schedule(const std::string& name, const std::string& where) {
  if (name == "constant") return LrSchedule::kConstant;
  if (name == "cosine") return LrSchedule::kCosine;
  throw Error(where, "unknown schedule '" + name + "'; expected constant or cosine");
}

std::string lr_schedule_name(LrSchedule schedule) {
  return schedule == LrSchedule::kConstant ? "constant" : "cosine";
}

double lr_factor(LrSchedule schedule, int64_t step, int64_t total, int64_t warmup, double min_lr_ratio) {
  if (warmup > 0 && step < warmup) return static_cast<double>(step + 1) / static_cast<double>(warmup);
  if (schedule == LrSchedule::kConstant) return 1.0;
  const double span = static_cast<double>(std::max<int64_t>(1, total - warmup - 1));
  const double progress = std::clamp(static_cast<double>(step - warmup) / span, 0.0, 1.0);
  return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

nlohmann::json TrainingOptions::to_json() const {
  return {{"epochs", epochs},
          {"max_steps", max_steps},
          {"batch_size", batch_size},
          {"schedule", lr_schedule_name(schedule)},
          {"warmup", warmup},
          {"min_lr_ratio", min_lr_ratio},
          {"weight_decay", weight_decay},
          {"clip", clip},
          {"seed", seed},
          {"checkpoint_every", checkpoint_every},
          {"validate_every", validate_every},
          {"device", device.str()},
          {"bf16", bf16}};
}

void validate(const TrainingOptions& options) {
  if (options.epochs < 1) throw Error("--epochs", "must be at least 1");
  if (options.max_steps < 0) throw Error("--steps", "must not be negative");
  if (options.batch_size < 1) throw Error("--batch-size", "must be at least 1");
  if (options.warmup < 0) throw Error("--warmup", "must not be negative");
  if (!(options.min_lr_ratio >= 0 && options.min_lr_ratio <= 1)) throw Error("--min-lr-ratio", "must be in [0, 1]");
  if (!(options.weight_decay >= 0)) throw Error("--weight-decay", "must not be negative");
  if (options.checkpoint_every < 0) throw Error("--checkpoint-every", "must not be negative");
  if (options.log_every < 1) throw Error("--log-every", "must be at least 1");
  if (options.validate_every < 0) throw Error("--validate-every", "must not be negative");
  if (options.bf16 && !options.device.is_cuda()) throw Error("--precision", "bf16 autocast needs a CUDA device; use f32 on the CPU");
}

std::atomic<bool>& interrupt_requested() {
  static std::atomic<bool> flag{false};
  return flag;
}

namespace {

void on_sigint(int) { interrupt_requested().store(true); }

// Installs the SIGINT handler for a run and restores the previous one.
class SigintScope {
 public:
  SigintScope() {
    struct sigaction action {};
    action.sa_handler = on_sigint;
    sigemptyset(&action.sa_mask);
    installed_ = ::sigaction(SIGINT, &action, &previous_) == 0;
  }
  ~SigintScope() {
    if (installed_) ::sigaction(SIGINT, &previous_, nullptr);
  }

 private:
  struct sigaction previous_ {};
  bool installed_ = false;
};

// FNV-1a over every window's tokens and label: a resumed run must see the same data.
uint64_t fingerprint(const TokenDataset& data) {
  uint64_t hash = 1469598103934665603ULL;
  auto mix = [&](uint64_t value) {
    for (int i = 0; i < 8; ++i) {
      hash ^= (value >> (8 * i)) & 0xFF;
      hash *= 1099511628211ULL;
    }
  };
  mix(static_cast<uint64_t>(data.seq_len()));
  for (const auto& window : data.windows()) {
    mix(static_cast<uint64_t>(window.label));
    const auto& tokens = data.tokens(window.document);
    for (int64_t t = 0; t < window.length; ++t) mix(static_cast<uint64_t>(tokens[static_cast<size_t>(window.begin + t)]));
  }
  return hash;
}

std::string checkpoint_name(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "checkpoint-%08lld", static_cast<long long>(step));
  return name;
}

// checkpoint-* folders that hold a trainer.json, oldest first.
std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const fs::path& out) {
  std::vector<std::pair<int64_t, fs::path>> found;
  DIR* dir = ::opendir(out.c_str());
  if (dir == nullptr) return found;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.rfind("checkpoint-", 0) != 0 || name.find(".tmp") != std::string::npos) continue;
    const std::string digits = name.substr(11);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    std::error_code ec;
    if (!fs::is_regular_file(out / name / "trainer.json", ec)) continue;
    found.emplace_back(std::stoll(digits), out / name);
  }
  ::closedir(dir);
  std::sort(found.begin(), found.end());
  return found;
}

bool is_empty_dir(const fs::path& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return false;
  bool empty = true;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") {
      empty = false;
      break;
    }
  }
  ::closedir(dir);
  return empty;
}

void make_dir(const fs::path& path) {
  if (::mkdir(path.c_str(), 0777) != 0 && errno != EEXIST) {
    throw Error(path.string(), std::string("cannot create the folder: ") + std::strerror(errno));
  }
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  char text[32];
  if (s >= 3600) {
    std::snprintf(text, sizeof text, "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>((s % 3600) / 60));
  } else {
    std::snprintf(text, sizeof text, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  }
  return text;
}

// Appends JSON lines to metrics.jsonl, flushing each.
class MetricsLog {
 public:
  MetricsLog(const fs::path& path, std::optional<int64_t> keep_through_step) : path_(path) {
    if (keep_through_step) {
      // A resumed run: drop what was logged after the checkpoint.
      std::string kept;
      std::error_code ec;
      if (fs::exists(path, ec)) {
        std::istringstream lines(read_file(path));
        std::string line;
        while (std::getline(lines, line)) {
          if (line.empty()) continue;
          const auto object = nlohmann::json::parse(line, nullptr, false);
          if (object.is_discarded() || object.value("step", int64_t{0}) > *keep_through_step) continue;
          kept += line + "\n";
        }
      }
      write_file_atomic(path, kept);
    }
    file_ = std::fopen(path.c_str(), "a");
    if (file_ == nullptr) throw Error(path.string(), std::string("cannot open for writing: ") + std::strerror(errno));
  }
  ~MetricsLog() {
    if (file_ != nullptr) std::fclose(file_);
  }
  void write(const nlohmann::json& object) {
    const std::string line = object.dump() + "\n";
    if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
      throw Error(path_.string(), std::string("cannot write: ") + std::strerror(errno));
    }
  }

 private:
  fs::path path_;
  FILE* file_ = nullptr;
};

double grad_norm_clip(const std::vector<torch::Tensor>& parameters, double clip) {
  std::vector<torch::Tensor> with_grad;
  for (const auto& p : parameters) {
    if (p.grad().defined()) with_grad.push_back(p);
  }
  if (with_grad.empty() || clip <= 0) return 0;
  return torch::nn::utils::clip_grad_norm_(with_grad, clip);
}

}  // namespace

AutocastGuard::AutocastGuard(torch::Device device, bool enabled) {
  if (!enabled || !device.is_cuda()) return;
  active_ = true;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  previous_ = at::autocast::is_autocast_enabled(at::kCUDA);
  at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
  previous_ = at::autocast::is_enabled();
  at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
  at::autocast::set_enabled(true);
#endif
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_enabled(at::kCUDA, previous_);
#else
  at::autocast::set_enabled(previous_);
#endif
  at::autocast::clear_cache();
}

torch::Tensor lm_loss(const torch::Tensor& logits, const torch::Tensor& targets) {
  return torch::nn::functional::cross_entropy(
      logits.reshape({-1, logits.size(-1)}).to(torch::kFloat32), targets.reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(Batch::kIgnoreIndex));
}

void remove_tree(const fs::path& dir) {
  ::nftw(dir.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
         FTW_DEPTH | FTW_PHYS);
}

nlohmann::json validate_objective(Objective& objective, const TokenDataset& data,
                                  const std::vector<std::string>& domain_names, const TrainingOptions& options) {
  torch::NoGradGuard no_grad;
  objective.train_mode(false);
  nlohmann::json domains = nlohmann::json::object();
  for (int64_t label = 0; label < 2; ++label) {
    std::vector<size_t> indices;
    for (size_t w = 0; w < data.size(); ++w) {
      if (data.windows()[w].label == label) indices.push_back(w);
    }
    if (indices.empty()) continue;
    std::map<std::string, double> sums;
    double tokens = 0;
    int64_t batches = 0;
    for (size_t first = 0; first < indices.size(); first += static_cast<size_t>(options.batch_size)) {
      if (options.validation_batches > 0 && batches >= options.validation_batches) break;
      const std::vector<size_t> slice(indices.begin() + static_cast<std::ptrdiff_t>(first),
                                      indices.begin() + static_cast<std::ptrdiff_t>(
                                                            std::min(indices.size(), first + options.batch_size)));
      const Batch batch = data.batch(slice);
      const double n = (batch.targets != Batch::kIgnoreIndex).sum().item<double>();
      StepLoss loss;
      {
        AutocastGuard autocast(options.device, options.bf16);
        loss = objective.loss(batch.to(options.device));
      }
      sums["loss"] += loss.total.item<double>() * n;
      for (const auto& [name, value] : loss.parts) sums[name] += value.item<double>() * n;
      tokens += n;
      ++batches;
    }
    nlohmann::json entry{{"tokens", static_cast<int64_t>(tokens)}};
    for (const auto& [name, sum] : sums) entry[name] = sum / tokens;
    if (entry.contains("lm")) entry["ppl"] = std::exp(entry["lm"].get<double>());
    domains[domain_names.at(static_cast<size_t>(label))] = entry;
  }
  objective.train_mode(true);
  return domains;
}

TrainingResult train(Objective& objective, const TokenDataset& train_data, const TokenDataset* validation,
                     const std::vector<std::string>& domain_names, const TrainingOptions& options,
                     const fs::path& out, bool resume, nlohmann::json provenance) {
  validate(options);
  const auto steps_per_epoch = static_cast<int64_t>(train_data.size()) / options.batch_size;
  if (steps_per_epoch < 1) {
    throw Error("--batch-size", std::to_string(options.batch_size) + " is more than the " +
                                    std::to_string(train_data.size()) + " training windows");
  }
  const int64_t total_steps = options.max_steps > 0 ? options.max_steps : options.epochs * steps_per_epoch;
  const uint64_t data_hash = fingerprint(train_data);

  // The output folder: new, or a run to resume.
  std::error_code ec;
  std::optional<fs::path> checkpoint;
  if (fs::exists(out, ec)) {
    if (!fs::is_directory(out, ec)) throw Error(out.string(), "exists and is not a folder");
    const auto checkpoints = list_checkpoints(out);
    if (resume) {
      if (checkpoints.empty()) {
        throw Error(out.string(), fs::exists(out / "training.json", ec)
                                      ? "holds a completed run (training.json) and no checkpoint to resume from"
                                      : "holds no checkpoint to resume from");
      }
      checkpoint = checkpoints.back().second;
    } else if (!is_empty_dir(out)) {
      throw Error(out.string(), "exists and is not empty; pass --resume to continue the run there, or choose a new folder");
    }
  } else if (resume) {
    throw Error(out.string(), "does not exist; nothing to resume");
  } else {
    make_dir(out);
  }

  // The optimizer: AdamW, one group per objective group.
  const auto groups = objective.groups();
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  for (const auto& group : groups) {
    auto adam = std::make_unique<torch::optim::AdamWOptions>(group.lr);
    adam->weight_decay(group.weight_decay);
    param_groups.emplace_back(group.parameters, std::move(adam));
  }
  torch::optim::AdamW optimizer(param_groups, torch::optim::AdamWOptions(groups.empty() ? 1e-3 : groups[0].lr));

  int64_t step = 0;
  if (checkpoint) {
    const auto where = (*checkpoint / "trainer.json").string();
    nlohmann::json state;
    try {
      state = nlohmann::json::parse(read_file(*checkpoint / "trainer.json"));
    } catch (const nlohmann::json::parse_error& e) {
      throw Error(where, std::string("malformed JSON: ") + e.what());
    }
    auto expect_same = [&](const char* key, const nlohmann::json& now, const char* option) {
      if (!state.contains(key) || state[key] != now) {
        throw Error(where, std::string("was written with ") + option + " " +
                               (state.contains(key) ? state[key].dump() : "(absent)") + ", this run has " + now.dump() +
                               "; resume with the same options");
      }
    };
    expect_same("seed", options.seed, "--seed");
    expect_same("batch_size", options.batch_size, "--batch-size");
    expect_same("total_steps", total_steps, "a total step count of");
    expect_same("data", std::to_string(data_hash), "training data fingerprint");
    step = state.value("step", int64_t{0});
    objective.load(*checkpoint);
    try {
      torch::serialize::InputArchive archive;
      archive.load_from((*checkpoint / "optimizer.pt").string());
      optimizer.load(archive);
    } catch (const c10::Error& e) {
      throw Error((*checkpoint / "optimizer.pt").string(),
                  std::string("cannot restore the optimizer: ") + e.what_without_backtrace());
    }
  }

  MetricsLog metrics(out / "metrics.jsonl", checkpoint ? std::optional<int64_t>(step) : std::nullopt);
  TrainingResult result;
  result.total_steps = total_steps;
  result.steps = step;

  auto save_checkpoint = [&](int64_t at_step) {
    const fs::path path = out / checkpoint_name(at_step);
    if (fs::exists(path, ec)) return;
    {
      AtomicDirectory dir(path);
      objective.save(dir.dir());
      torch::serialize::OutputArchive archive;
      optimizer.save(archive);
      archive.save_to((dir / "optimizer.pt").string());
      nlohmann::json state{{"step", at_step},        {"total_steps", total_steps},
                           {"seed", options.seed},   {"batch_size", options.batch_size},
                           {"data", std::to_string(data_hash)}, {"options", options.to_json()}};
      write_file_atomic(dir / "trainer.json", state.dump(2) + "\n");
      dir.commit();
    }
    for (const auto& [older, older_path] : list_checkpoints(out)) {
      if (older < at_step) remove_tree(older_path);
    }
    result.checkpoint = path;
  };

  nlohmann::json last_validation;
  auto run_validation = [&](int64_t at_step) {
    if (validation == nullptr || validation->size() == 0) return;
    const auto domains = validate_objective(objective, *validation, domain_names, options);
    last_validation = {{"event", "validation"}, {"step", at_step}, {"epoch", (at_step - 1) / steps_per_epoch},
                       {"domains", domains}};
    metrics.write(last_validation);
    if (options.progress) {
      std::string line = "validation at step " + std::to_string(at_step) + ":";
      for (const auto& [name, entry] : domains.items()) {
        char text[96];
        std::snprintf(text, sizeof text, " %s loss %.4f", name.c_str(), entry["loss"].get<double>());
        line += text;
        if (entry.contains("ppl")) {
          std::snprintf(text, sizeof text, " ppl %.2f", entry["ppl"].get<double>());
          line += text;
        }
      }
      std::fprintf(stderr, "%s\n", line.c_str());
    }
  };

  const bool tty = ::isatty(STDERR_FILENO) != 0;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  SigintScope sigint;
  interrupt_requested().store(false);
  objective.train_mode(true);

  std::vector<size_t> order;
  int64_t order_epoch = -1;
  std::vector<std::pair<int64_t, StepLoss>> pending;  // losses not yet read back (avoids a sync per step)
  double tokens_done = 0;
  const int64_t first_step = step;
  const int64_t report_every = tty ? 1 : std::max<int64_t>(options.log_every, total_steps / 20);

  auto flush = [&] {
    for (auto& [at_step, loss] : pending) {
      const double value = loss.total.item<double>();
      if (!std::isfinite(value)) {
        throw Error("training", "the loss is " + std::to_string(value) + " at step " + std::to_string(at_step + 1) +
                                    "; lower the learning rate or resume from an earlier checkpoint");
      }
      result.losses.push_back(value);
      if ((at_step + 1) % options.log_every == 0 || at_step + 1 == total_steps) {
        nlohmann::json line{{"step", at_step + 1},
                            {"epoch", at_step / steps_per_epoch},
                            {"loss", value},
                            {"lr", optimizer.param_groups()[0].options().get_lr()},
                            {"tokens_per_s", tokens_done / std::max(1e-9, elapsed())},
                            {"elapsed_s", elapsed()}};
        for (const auto& [name, part] : loss.parts) line[name] = part.item<double>();
        metrics.write(line);
      }
    }
    pending.clear();
  };

  while (step < total_steps) {
    const int64_t epoch = step / steps_per_epoch;
    if (epoch != order_epoch) {
      order = train_data.epoch_order(options.seed, epoch);
      order_epoch = epoch;
    }
    const auto within = static_cast<size_t>(step % steps_per_epoch);
    const std::vector<size_t> indices(
        order.begin() + static_cast<std::ptrdiff_t>(within * options.batch_size),
        order.begin() + static_cast<std::ptrdiff_t>((within + 1) * options.batch_size));
    const Batch cpu_batch = train_data.batch(indices);
    tokens_done += (cpu_batch.targets != Batch::kIgnoreIndex).sum().item<double>();
    const Batch batch = cpu_batch.to(options.device);

    // Everything random in a step (dropout) is drawn from a generator seeded
    // by (seed, step), so a resumed run draws the same.
    torch::manual_seed(options.seed * 1000003ULL + static_cast<uint64_t>(step));
    const double factor = lr_factor(options.schedule, step, total_steps, options.warmup, options.min_lr_ratio);
    for (size_t g = 0; g < groups.size(); ++g) {
      optimizer.param_groups()[g].options().set_lr(groups[g].lr * factor);
    }
    optimizer.zero_grad();
    StepLoss loss;
    {
      AutocastGuard autocast(options.device, options.bf16);
      loss = objective.loss(batch);
    }
    loss.total.backward();
    for (const auto& group : groups) grad_norm_clip(group.parameters, options.clip);
    optimizer.step();
    StepLoss logged{loss.total.detach(), {}};
    for (const auto& [name, part] : loss.parts) logged.parts[name] = part.detach();
    pending.emplace_back(step, std::move(logged));
    ++step;
    result.steps = step;

    const bool epoch_end = step % steps_per_epoch == 0;
    if (step % options.log_every == 0 || step == total_steps || epoch_end) flush();
    if (options.progress && (step % report_every == 0 || step == total_steps)) {
      flush();
      const double t = elapsed();
      const double rate = tokens_done / std::max(1e-9, t);
      const double eta = t / static_cast<double>(step - first_step) * static_cast<double>(total_steps - step);
      const int width = 24;
      const int filled = static_cast<int>(width * step / total_steps);
      std::string bar = "[" + std::string(static_cast<size_t>(filled), '=') +
                        std::string(static_cast<size_t>(width - filled), ' ') + "]";
      char text[256];
      int n = std::snprintf(text, sizeof text, "step %lld/%lld %s loss %.4f", static_cast<long long>(step),
                            static_cast<long long>(total_steps), bar.c_str(), result.losses.back());
      std::string line(text, static_cast<size_t>(n));
      for (const auto& [name, part] : loss.parts) {
        n = std::snprintf(text, sizeof text, " %s %.4f", name.c_str(), part.item<double>());
        line.append(text, static_cast<size_t>(n));
      }
      n = std::snprintf(text, sizeof text, " | %.0f tok/s | ETA %s", rate, format_duration(eta).c_str());
      line.append(text, static_cast<size_t>(n));
      if (tty) {
        std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), step == total_steps ? "\n" : "");
      } else {
        std::fprintf(stderr, "%s\n", line.c_str());
      }
    }

    const bool validate_now =
        options.validate_every > 0 ? step % options.validate_every == 0 || step == total_steps : epoch_end || step == total_steps;
    if (validate_now) {
      if (tty && options.progress && step != total_steps) std::fprintf(stderr, "\n");
      run_validation(step);
    }
    if (interrupt_requested().load()) {
      flush();
      save_checkpoint(step);
      if (tty && options.progress) std::fprintf(stderr, "\n");
      result.interrupted = true;
      break;
    }
    if (options.checkpoint_every > 0 && step % options.checkpoint_every == 0 && step < total_steps) {
      flush();
      save_checkpoint(step);
    }
  }
  flush();
  result.seconds = elapsed();
  result.tokens_per_second = tokens_done / std::max(1e-9, result.seconds);
  result.last_validation = last_validation;
  if (result.interrupted) return result;

  provenance["options"] = options.to_json();
  provenance["steps"] = step;
  provenance["steps_per_epoch"] = steps_per_epoch;
  provenance["train_windows"] = train_data.size();
  provenance["seq_len"] = train_data.seq_len();
  provenance["seconds_last_run"] = result.seconds;
  provenance["tokens_per_s"] = result.tokens_per_second;
  if (!last_validation.is_null()) provenance["validation"] = last_validation["domains"];
  if (!result.losses.empty()) provenance["final_loss"] = result.losses.back();
  objective.save_final(out, provenance);
  write_file_atomic(out / "training.json", provenance.dump(2) + "\n");
  if (!options.keep_checkpoints) {
    for (const auto& [at, path] : list_checkpoints(out)) remove_tree(path);
    result.checkpoint.clear();
  } else {
    save_checkpoint(step);
  }
  return result;
}

}  // namespace superpose
