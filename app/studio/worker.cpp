// Worker thread: model files are read and every forward pass runs here, never
// on the UI thread; generation is one queued command per token.
#include "app/studio/worker.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include <torch/cuda.h>
#include <torch/torch.h>

#include "analysis/capture.h"
#include "analysis/eval.h"
#include "analysis/expert_affinity.h"
#include "analysis/neuron_report.h"
#include "analysis/neurons.h"
#include "analysis/state_recorder.h"
#include "analysis/trajectory.h"
#include "analysis/tsne.h"
#include "app/studio/tsne_map.h"
#include "model/dataset.h"
#include "model/device.h"
#include "model/errors.h"
#include "model/file_util.h"
#include "model/gpt2.h"
#include "model/model_dir.h"
#include "model/safetensors.h"
#include "model/sampling.h"
#include "model/seed_import.h"
#include "model/superposed_generate.h"
#include "model/superposition_io.h"
#include "model/tokenizer.h"

namespace superpose::studio {
namespace {

using Clock = std::chrono::steady_clock;

// Commands that may run between an evaluation's batches (Worker::run_eval).
constexpr auto kAlongside = Worker::Order::kAlongside;
// Commands that replace the loaded model, which an evaluation gives way to.
constexpr auto kReplacesModel = Worker::Order::kReplacesModel;

std::string number_text(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

// Token bytes as valid UTF-8: a byte that starts no complete, valid sequence
// (a token may end inside a character) becomes U+FFFD.
std::string display_text(const std::string& bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    const auto lead = static_cast<unsigned char>(bytes[i]);
    const size_t length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    if (i + length <= bytes.size() && is_valid_utf8(std::string_view(bytes).substr(i, length))) {
      out.append(bytes, i, length);
      i += length;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

// (N) or (N,C) float tensor -> flat row-major floats.
std::vector<float> to_floats(const torch::Tensor& t) {
  const auto cpu = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  const float* p = cpu.data_ptr<float>();
  return std::vector<float>(p, p + cpu.numel());
}

// α (L) / (L,C) -> per-layer values (L); 2D: the mean over dimensions.
std::vector<float> per_layer(const torch::Tensor& alpha) {
  return to_floats(alpha.dim() == 2 ? alpha.to(torch::kFloat32).mean(1) : alpha);
}

// The kTopTokens most likely tokens of (V) logits at temperature 1.
std::vector<TopToken> top_tokens(const torch::Tensor& logits, const Tokenizer* tokenizer) {
  const auto probs = torch::softmax(logits.to(torch::kFloat32), 0);  // (V)
  const int64_t k = std::min<int64_t>(kTopTokens, probs.size(0));
  const auto top = probs.topk(k);
  const auto values = std::get<0>(top).to(torch::kCPU).contiguous();
  const auto indices = std::get<1>(top).to(torch::kCPU).contiguous();
  std::vector<TopToken> out;
  for (int64_t i = 0; i < k; ++i) {
    TopToken t;
    t.id = indices.data_ptr<int64_t>()[i];
    t.prob = values.data_ptr<float>()[i];
    if (tokenizer != nullptr && t.id < tokenizer->vocab_size()) t.text = display_text(tokenizer->token_bytes(t.id));
    out.push_back(std::move(t));
  }
  return out;
}

torch::Device resolve_device(const std::string& text) {
  if (text.empty() || text == "auto") {
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  }
  return parse_device(text);
}

// One expert run alone, incrementally, along the generated sequence: its own
// next-token distribution at each step.
struct ExpertStream {
  GPT2 model{nullptr};
  KVCache cache;
  int64_t computed = 0;  // positions in the cache
  torch::Tensor logits;  // (V) after `computed` positions

  explicit ExpertStream(GPT2 m) : model(std::move(m)), cache(model->make_cache()) {}

  torch::Tensor next_logits(const std::vector<int64_t>& sequence) {
    const auto n = static_cast<int64_t>(sequence.size());
    if (computed == n && logits.defined()) return logits;
    const std::vector<int64_t> ids(sequence.begin() + computed, sequence.end());
    const auto input = torch::tensor(ids, torch::kLong).view({1, -1}).to(model->wte->weight.device());  // (1,T)
    const auto out = model->forward(input, &cache);  // (1,T,V)
    computed = n;
    logits = out[0][out.size(1) - 1];  // (V)
    return logits;
  }
};

AlphaSchedule make_schedule(const std::vector<ScheduleSegment>& segments, const std::vector<int64_t>& shape);
bool in_import_cache(const std::filesystem::path& dir);

}  // namespace

std::vector<float> alpha_from_control_points(const std::vector<float>& basis, const std::vector<float>& control,
                                             const std::vector<float>& bias) {
  const size_t n_control = control.size(), layers = bias.size();
  assert(basis.size() == layers * n_control);
  std::vector<float> alpha(layers);
  for (size_t l = 0; l < layers; ++l) {
    // Float accumulation in the order of torch's matmul is not guaranteed;
    // double keeps the difference to the model's float32 α within rounding.
    double sum = 0.0;
    for (size_t j = 0; j < n_control; ++j) sum += static_cast<double>(basis[l * n_control + j]) * control[j];
    const float v = static_cast<float>(sum) + 0.1f * bias[l];
    alpha[l] = std::clamp(v, 0.0f, 1.0f);
  }
  return alpha;
}

std::vector<float> greville_abscissae(int64_t n_control, int64_t degree) {
  assert(n_control >= degree + 1 && degree >= 0);
  // Knots: [0]*k ++ linspace(0, 1, K - k + 1) ++ [1]*k (alpha.h).
  std::vector<double> knots(static_cast<size_t>(degree), 0.0);
  const int64_t inner = n_control - degree + 1;
  for (int64_t i = 0; i < inner; ++i) knots.push_back(inner == 1 ? 0.0 : static_cast<double>(i) / (inner - 1));
  for (int64_t i = 0; i < degree; ++i) knots.push_back(1.0);
  std::vector<float> x(static_cast<size_t>(n_control));
  for (int64_t j = 0; j < n_control; ++j) {
    if (degree == 0) {
      x[static_cast<size_t>(j)] = static_cast<float>((knots[static_cast<size_t>(j)] + knots[static_cast<size_t>(j + 1)]) / 2);
      continue;
    }
    double sum = 0.0;
    for (int64_t i = 1; i <= degree; ++i) sum += knots[static_cast<size_t>(j + i)];
    x[static_cast<size_t>(j)] = static_cast<float>(sum / static_cast<double>(degree));
  }
  return x;
}

// Everything the worker thread owns besides the draft snapshot.
struct Worker::Models {
  SuperposedModel model{nullptr};
  GPT2 base{nullptr}, fine{nullptr};
  torch::Device device{torch::kCPU};
  std::optional<Tokenizer> tokenizer;

  struct Generation {
    uint64_t ticket = 0;
    std::unique_ptr<SuperposedGenerator> generator;
    std::unique_ptr<Sampler> sampler;
    std::unique_ptr<ExpertStream> base, fine;
    GenerationSettings settings;
    std::optional<int64_t> eos;
    std::vector<int64_t> generated;
    std::optional<int64_t> pause_at;  // pause once `generated` reaches this count
    bool active = false;              // started and not ended
    bool paused = false;
    bool step_queued = false;         // a step command is in the queue
    double seconds = 0.0;             // spent computing tokens
  };
  std::unique_ptr<Generation> generation;

  LoadedModel base_files, fine_files;  // the experts as capture_states takes them
  struct TsneRun {
    uint64_t ticket = 0;
    std::unique_ptr<Tsne> tsne;
    int64_t chunk = 10;
  };
  std::unique_ptr<TsneRun> tsne;
  std::optional<Capture> neuron_capture;  // the last compute_neurons() capture
  std::optional<TrajectoryMap> trajectory_map;  // the last compute_trajectories() map

  SuperposedModel& require() {
    if (model.is_empty()) throw Error("no superposition is loaded: load one first");
    return model;
  }
  Generation& require_generation() {
    if (!generation) throw Error("no sequence yet: generate first (0 new tokens only reads the prompt)");
    return *generation;
  }
};

Worker::Worker() : snapshot_(std::make_shared<Snapshot>()), models_(std::make_unique<Models>()),
                   thread_([this] { run(); }) {}

Worker::~Worker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    commands_.clear();
  }
  wake_.notify_all();
  thread_.join();
}

std::shared_ptr<const Snapshot> Worker::snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return snapshot_;
}

void Worker::publish() {
  auto next = std::make_shared<Snapshot>(draft_);
  std::lock_guard<std::mutex> lock(mutex_);
  next->version = draft_.version = ++version_;
  snapshot_ = std::move(next);
}

void Worker::fail(const std::string& message) {
  draft_.message = message;
  ++draft_.errors;
  draft_.job.reset();
  publish();
}

void Worker::run() {
  // Grad mode is thread-local: nothing on this thread records graphs.
  torch::NoGradGuard no_grad;
  for (;;) {
    Command command;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !commands_.empty(); });
      if (stopping_) return;
      command = std::move(commands_.front());
      commands_.pop_front();
    }
    command.run();
    pending_.fetch_sub(1);
  }
}

bool Worker::run_alongside() {
  size_t budget = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return false;
    budget = commands_.size();
  }
  for (; budget > 0; --budget) {
    Command command;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return false;
      // The first command that may not run alongside keeps its place, and
      // every command after it keeps waiting behind it: the order holds.
      if (commands_.empty() || commands_.front().order != Order::kAlongside) return true;
      command = std::move(commands_.front());
      commands_.pop_front();
    }
    command.run();
    pending_.fetch_sub(1);
  }
  return true;
}

bool Worker::model_replacement_queued() {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::any_of(commands_.begin(), commands_.end(),
                     [](const Command& c) { return c.order == Order::kReplacesModel; });
}

void Worker::enqueue(std::function<void()> command, Order order) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    pending_.fetch_add(1);
    commands_.push_back(Command{std::move(command), order});
  }
  wake_.notify_one();
}

void Worker::enqueue_guarded(const char* name, std::function<void()> command, Order order) {
  enqueue([this, name, command = std::move(command)] {
    try {
      command();
    } catch (const Error& e) {
      fail(e.what());
    } catch (const c10::Error& e) {
      // LibTorch's own checks: the first line, without the C++ backtrace.
      const std::string text = e.what_without_backtrace();
      fail(std::string(name) + ": " + text.substr(0, text.find('\n')));
    } catch (const std::exception& e) {
      fail(std::string(name) + ": " + e.what());
    }
  }, order);
}

// --- loading -------------------------------------------------------------

void Worker::load_model(const std::filesystem::path& dir) {
  enqueue_guarded("load_model", [this, dir] {
    draft_.status = Snapshot::Status::kLoading;
    draft_.model_dir = dir.string();
    draft_.job = JobProgress{"loading " + dir.string(), -1.0, false};
    publish();
    draft_.config = GPT2Config();
    draft_.parameters = 0;
    draft_.tokenizer_dir.clear();
    draft_.tensors.clear();
    draft_.job.reset();
    try {
      const ModelFiles files = locate_model(dir);
      GPT2Config config = load_gpt2_config(files.config);
      const SafetensorsFile weights(files.weights);
      match_gpt2_tensors(weights, config);
      draft_.config = config;
      draft_.parameters = gpt2_parameter_count(config);
      for (const auto& t : weights.tensors()) draft_.tensors.push_back({t.name, t.dtype, t.shape, t.end - t.begin});
      try {
        draft_.tokenizer_dir = resolve_tokenizer_dir(std::nullopt, dir).string();
      } catch (const Error&) {
        draft_.tokenizer_dir.clear();
      }
      draft_.status = Snapshot::Status::kReady;
      draft_.message.clear();
      publish();
    } catch (const std::exception& e) {
      draft_.status = Snapshot::Status::kFailed;
      fail(e.what());
    }
  }, kReplacesModel);
}

void Worker::load_superposition(const std::filesystem::path& dir, const LoadSettings& settings) {
  enqueue_guarded(
      "load_superposition", [this, dir, settings] { do_load_superposition(dir, settings, false, {}, {}); },
      kReplacesModel);
}

void Worker::load_experts(const std::filesystem::path& base, const std::filesystem::path& fine,
                          const LoadSettings& settings) {
  enqueue_guarded("load_experts",
                  [this, base, fine, settings] { do_load_superposition({}, settings, true, base, fine); },
                  kReplacesModel);
}

void Worker::do_load_superposition(const std::filesystem::path& dir, const LoadSettings& settings,
                                   bool experts_only, const std::filesystem::path& base_dir,
                                   const std::filesystem::path& fine_dir) {
  const std::string shown = experts_only ? base_dir.string() + " + " + fine_dir.string() : dir.string();
  draft_.status = Snapshot::Status::kLoading;
  draft_.model_dir = shown;
  draft_.job = JobProgress{"loading " + shown, -1.0, false};
  publish();
  try {
    const torch::Device device = resolve_device(settings.device);
    const torch::Dtype dtype = parse_dtype(settings.dtype, device);
    LoadedSuperposition loaded;
    if (experts_only) {
      auto experts = superpose::load_experts(base_dir, fine_dir, device, dtype);
      SuperposedConfig config = SuperposedConfig::defaults(AlphaVariant::k1D, experts.first.config);
      config.ae_layers.clear();
      loaded.model = SuperposedModel(experts.first.model, experts.second.model, config);
      // Control points of 0.5 and no bias: α = 0.5 at every layer (the basis rows sum to 1).
      loaded.model->alpha->control_points.fill_(0.5);
      loaded.model->alpha->layer_bias.zero_();
      loaded.model->eval();
      loaded.base = std::move(experts.first);
      loaded.fine = std::move(experts.second);
    } else {
      loaded = superpose::load_superposition(dir, settings.base, settings.fine, device, dtype);
    }
    std::optional<Tokenizer> tokenizer;
    std::string tokenizer_dir;
    try {
      tokenizer_dir = resolve_tokenizer_dir(std::nullopt, loaded.base.files.dir).string();
      tokenizer = Tokenizer::from_dir(tokenizer_dir);
    } catch (const Error&) {
      tokenizer_dir.clear();
    }

    // Commit: the new models replace the old ones and end their generation.
    if (models_->generation && models_->generation->active) end_generation("model replaced", true);
    models_->generation.reset();
    models_->model = loaded.model;
    models_->base = loaded.base.model;
    models_->fine = loaded.fine.model;
    models_->base_files = loaded.base;
    models_->fine_files = loaded.fine;
    models_->tsne.reset();
    models_->neuron_capture.reset();
    models_->trajectory_map.reset();
    draft_.trajectories.reset();
    models_->device = device;
    models_->tokenizer = std::move(tokenizer);

    SuperposedModel& model = models_->model;
    const SuperposedConfig& config = model->config();
    SuperpositionInfo info;
    info.dir = experts_only ? std::string() : dir.string();
    info.base_dir = loaded.base.files.dir.string();
    info.fine_dir = loaded.fine.files.dir.string();
    info.device = device_name(device);
    info.dtype = dtype_name(dtype);
    info.variant = variant_name(config.alpha.variant);
    info.causal = model->causal();
    info.convolution = config.ae_layers.empty() ? "none"
                       : config.autoencoder.conv == ConvMode::kCausal ? "causal" : "centered";
    info.embedding_blend = embedding_blend_name(config.embedding_blend);
    info.n_layer = model->n_layer();
    info.n_embd = config.alpha.n_embd;
    info.context = model->context();
    info.alpha_shape = model->alpha_shape();
    {
      c10::InferenceMode inference;
      info.alpha_learned = to_floats(model->learned_alpha());
      if (config.alpha.variant == AlphaVariant::k1D) {
        info.n_control = config.alpha.n_control;
        info.degree = config.alpha.degree;
        info.alpha_basis = to_floats(model->alpha->basis);
        info.control_points = to_floats(model->alpha->control_points);
        info.layer_bias = to_floats(model->alpha->layer_bias);
      }
    }
    info.tokenizer_dir = tokenizer_dir;
    draft_.superposition = std::move(info);
    refresh_superposition_info();

    draft_.config = loaded.base.config;
    draft_.tokenizer_dir = tokenizer_dir;
    draft_.parameters = 0;
    draft_.tensors.clear();
    for (const auto& item : model->named_parameters()) {
      const torch::Tensor& p = item.value();
      draft_.parameters += p.numel();
      draft_.tensors.push_back(TensorRow{item.key(), dtype_name(p.scalar_type()), p.sizes().vec(),
                                         static_cast<uint64_t>(p.numel() * p.element_size())});
    }
    draft_.analysis.reset();
    draft_.status = Snapshot::Status::kReady;
    draft_.message.clear();
    draft_.job.reset();
    // An import used again counts as recent for the cache's trimming (ImportRequest::keep).
    if (!experts_only && in_import_cache(dir)) ::utimensat(AT_FDCWD, dir.c_str(), nullptr, 0);
    publish();
  } catch (const std::exception& e) {
    // The loaded superposition, if any, stays usable.
    draft_.status = Snapshot::Status::kFailed;
    fail(e.what());
  }
}

namespace {

bool exists_no_follow(const std::filesystem::path& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// The folder a staged import is written to, removed unless it was moved into place.
struct StagedImport {
  std::filesystem::path dir;
  ~StagedImport() {
    if (!dir.empty()) remove_directory_tree(dir);
  }
};

// Removes the imports (non-hidden folders holding superposition.json) of
// `root` beyond the `keep` most recently modified; the folders in `always`
// (compared as files, so any spelling of them counts) stay and count first.
// Each goes to a hidden name first, so that no half-removed import shows.
void prune_imports(const std::filesystem::path& root, size_t keep, const std::vector<std::filesystem::path>& always) {
  if (keep == 0) return;
  std::vector<std::pair<dev_t, ino_t>> protected_ids;
  for (const auto& dir : always) {
    struct stat st {};
    if (!dir.empty() && ::stat(dir.c_str(), &st) == 0) protected_ids.emplace_back(st.st_dev, st.st_ino);
  }
  struct Import {
    std::string name;
    timespec modified;
  };
  std::vector<Import> others;
  size_t kept = 0;
  DIR* dir = ::opendir(root.c_str());
  if (dir == nullptr) return;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    struct stat st {};
    const std::filesystem::path path = root / e->d_name;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || !exists_no_follow(path / kSuperpositionJson)) continue;
    if (std::find(protected_ids.begin(), protected_ids.end(), std::make_pair(st.st_dev, st.st_ino)) !=
        protected_ids.end()) {
      ++kept;
    } else {
      others.push_back({e->d_name, st.st_mtim});
    }
  }
  ::closedir(dir);
  std::sort(others.begin(), others.end(), [](const Import& a, const Import& b) {
    if (a.modified.tv_sec != b.modified.tv_sec) return a.modified.tv_sec > b.modified.tv_sec;
    if (a.modified.tv_nsec != b.modified.tv_nsec) return a.modified.tv_nsec > b.modified.tv_nsec;
    return a.name < b.name;
  });
  for (const Import& import : others) {
    if (kept < keep) {
      ++kept;
      continue;
    }
    const std::filesystem::path path = root / import.name;
    try {
      const std::filesystem::path doomed = make_hidden_sibling_directory(path, "removed");
      if (::rename(path.c_str(), doomed.c_str()) == 0) {
        remove_directory_tree(doomed);
      } else {
        ::rmdir(doomed.c_str());
      }
    } catch (const Error&) {
      // Left for the next import's turn.
    }
  }
}

// Whether `dir` lies directly in import_cache_root() (as a file: any spelling).
bool in_import_cache(const std::filesystem::path& dir) {
  std::filesystem::path parent = dir.lexically_normal();
  if (!parent.has_filename()) parent = parent.parent_path();
  parent = parent.parent_path();
  if (parent.empty()) parent = ".";
  struct stat a {}, b {};
  return ::stat(parent.c_str(), &a) == 0 && ::stat(import_cache_root().c_str(), &b) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino;
}

}  // namespace

std::filesystem::path import_cache_root(const char* xdg_cache_home, const char* home) {
  const std::filesystem::path tail = std::filesystem::path("superpose-studio") / "imported";
  if (xdg_cache_home != nullptr && *xdg_cache_home != '\0' && std::filesystem::path(xdg_cache_home).is_absolute()) {
    return std::filesystem::path(xdg_cache_home) / tail;
  }
  if (home != nullptr && *home != '\0') return std::filesystem::path(home) / ".cache" / tail;
  std::error_code ec;
  const std::filesystem::path temp = std::filesystem::temp_directory_path(ec);
  return (ec ? std::filesystem::path("/tmp") : temp) / tail;
}

std::filesystem::path import_cache_root() {
  return import_cache_root(std::getenv("XDG_CACHE_HOME"), std::getenv("HOME"));
}

std::filesystem::path import_folder(const std::filesystem::path& root, const std::filesystem::path& checkpoint) {
  std::string stem = checkpoint.stem().string();
  stem.erase(0, stem.find_first_not_of('.'));  // not a hidden folder
  return root / (stem.empty() ? std::string("checkpoint") : stem);
}

uint64_t Worker::import_seed(const ImportRequest& request) {
  const uint64_t ticket = import_tickets_.fetch_add(1) + 1;
  enqueue([this, ticket, request] { do_import(ticket, request); }, kReplacesModel);
  return ticket;
}

void Worker::cancel_import() { import_cancel_.store(import_tickets_.load()); }

void Worker::do_import(uint64_t ticket, const ImportRequest& request) {
  const std::string checkpoint = request.checkpoint.string();
  ImportStatus status;
  status.id = ticket;
  status.checkpoint = checkpoint;
  status.running = true;
  draft_.import = status;
  // False when the import is to end before `what`: cancel_import(), or the
  // request's callback said so. Otherwise publishes the stage.
  auto begin = [&](const char* what, double fraction) {
    if (request.progress && !request.progress(what, fraction)) return false;
    if (ticket <= import_cancel_.load()) return false;
    draft_.import->stage = what;
    draft_.import->fraction = fraction;
    const bool cancellable = std::strcmp(what, "loading") != 0;
    draft_.job =
        JobProgress{"importing " + request.checkpoint.filename().string() + ": " + what, fraction, cancellable};
    publish();
    return true;
  };
  auto end_cancelled = [&] {
    draft_.import->running = false;
    draft_.import->cancelled = true;
    draft_.job.reset();
    publish();
  };
  auto failed = [&](std::string message) {
    // One line that names the checkpoint, whichever step failed.
    message = message.substr(0, message.find('\n'));
    if (message.find(checkpoint) == std::string::npos) message = "import " + checkpoint + ": " + message;
    draft_.import->running = false;
    draft_.import->failed = true;
    draft_.import->message = message;
    fail(message);
  };
  std::filesystem::path out;
  StagedImport staged;  // removed on every way out until moved into place
  std::optional<std::filesystem::path> previous;  // an earlier import of `out`, swapped aside
  try {
    if (request.checkpoint.empty()) throw Error("import", "no checkpoint file named");
    if (request.base.empty() || request.fine.empty()) {
      throw Error("import", "choose the base and fine experts' folders (HF GPT-2) the checkpoint was trained over");
    }
    if (request.out_root.empty()) throw Error("import", "no folder named for the imported superposition");
    if (!begin("reading the checkpoint", 0.0)) return end_cancelled();
    const SeedCheckpoint seed = read_seed_checkpoint(request.checkpoint);
    if (!begin("loading the experts", 0.2)) return end_cancelled();
    auto experts = superpose::load_experts(request.base, request.fine, torch::kCPU, torch::kFloat32);
    if (!begin("building the superposition", 0.4)) return end_cancelled();
    SuperposedModel model = superposition_from_seed(seed, experts.first.model, experts.second.model, {});
    if (!begin("writing", 0.6)) return end_cancelled();
    make_directories(request.out_root);
    out = import_folder(request.out_root, request.checkpoint);
    draft_.import->out_dir = out.string();
    // Written beside `out` (so the experts' relative paths hold there too),
    // complete before anything at `out` changes.
    staged.dir = make_hidden_sibling_directory(out, "import");
    SuperpositionSpec spec;
    spec.provenance = {{"source", "notebook checkpoint"},
                       {"checkpoint", checkpoint},
                       {"note", "centered convolution: non-causal, as trained by the notebooks"}};
    save_superposition(staged.dir, model, spec, request.base, request.fine);
    if (!begin("loading", 0.8)) return end_cancelled();
    if (exists_no_follow(out)) {
      exchange_paths(staged.dir, out);
      previous = staged.dir;  // holds the earlier import now; removed with `staged` either way
    } else if (::rename(staged.dir.c_str(), out.c_str()) != 0) {
      throw Error(out.string(), std::string("cannot move the import into place: ") + std::strerror(errno));
    } else {
      staged.dir.clear();
    }
  } catch (const c10::Error& e) {
    failed(e.what_without_backtrace());
    return;
  } catch (const std::exception& e) {
    failed(e.what());
    return;
  }
  do_load_superposition(out, request.load, false, {}, {});  // publishes; its failure is the message
  ImportStatus& done = *draft_.import;
  done.running = false;
  if (draft_.status == Snapshot::Status::kReady) {
    done.finished = true;
    done.fraction = 1.0;
    prune_imports(request.out_root, request.keep, {out, draft_.superposition ? draft_.superposition->dir : ""});
  } else {
    // The import folder as it was: the earlier import back at `out`, or none.
    try {
      if (previous) {
        exchange_paths(*previous, out);
      } else {
        remove_directory_tree(out);
      }
    } catch (const Error&) {
      // The new import stays at `out`; the message below is about the load.
    }
    done.failed = true;
    done.message = draft_.message;
  }
  publish();
}

void Worker::refresh_superposition_info() {
  if (!draft_.superposition || models_->model.is_empty()) return;
  SuperposedModel& model = models_->model;
  SuperpositionInfo& info = *draft_.superposition;
  c10::InferenceMode inference;
  info.alpha_overridden = model->has_alpha_override();
  info.alpha_in_force = info.alpha_overridden ? to_floats(model->effective_alpha()) : info.alpha_learned;
  info.has_autoencoder.assign(static_cast<size_t>(info.n_layer), false);
  info.autoencoder_enabled.assign(static_cast<size_t>(info.n_layer), false);
  for (int64_t l = 0; l < info.n_layer; ++l) {
    info.has_autoencoder[static_cast<size_t>(l)] = model->has_autoencoder(l);
    info.autoencoder_enabled[static_cast<size_t>(l)] = model->autoencoder_enabled(l);
  }
}

// --- generation ----------------------------------------------------------

uint64_t Worker::generate(const std::string& prompt, const GenerationSettings& settings) {
  const uint64_t ticket = generate_tickets_.fetch_add(1) + 1;
  enqueue_guarded("generate", [this, ticket, prompt, settings] { do_generate(ticket, prompt, settings); }, kAlongside);
  return ticket;
}

void Worker::do_generate(uint64_t ticket, const std::string& prompt, const GenerationSettings& settings) {
  SuperposedModel& model = models_->require();
  if (!models_->tokenizer) throw Error("generate: no tokenizer was found for " + draft_.superposition->base_dir);
  if (settings.max_new_tokens < 0) {
    throw Error("max new tokens must be >= 0, got " + std::to_string(settings.max_new_tokens));
  }
  if (!(settings.greedy || (settings.temperature >= 0.0 && std::isfinite(settings.temperature)))) {
    throw Error("temperature must be a finite number >= 0, got " + number_text(settings.temperature));
  }
  if (settings.top_k < 0) throw Error("top-k must be >= 0 (0 = no limit), got " + std::to_string(settings.top_k));
  if (!(settings.top_p > 0.0 && settings.top_p <= 1.0)) {
    throw Error("top-p must be in (0, 1], got " + number_text(settings.top_p));
  }
  if (settings.pause_after < 0) throw Error("pause after must be >= 0, got " + std::to_string(settings.pause_after));
  SamplingOptions sampling;
  sampling.temperature = settings.greedy ? 0.0 : settings.temperature;
  sampling.top_k = settings.top_k;
  sampling.top_p = settings.top_p;
  sampling.seed = settings.seed;

  const Tokenizer& tokenizer = *models_->tokenizer;
  const std::vector<int64_t> ids = tokenizer.encode(prompt);
  if (ids.empty()) throw Error("prompt: empty; type some text to continue");

  auto g = std::make_unique<Models::Generation>();
  g->ticket = ticket;
  AlphaSchedule schedule;
  if (!draft_.alpha_schedule.empty()) {
    c10::InferenceMode inference;
    schedule = make_schedule(draft_.alpha_schedule, model->alpha_shape());  // another model may differ
  }
  // Error("prompt", ...) when too long
  g->generator = std::make_unique<SuperposedGenerator>(model, ids, true, std::move(schedule));
  g->sampler = std::make_unique<Sampler>(sampling);
  g->base = std::make_unique<ExpertStream>(models_->base);
  g->fine = std::make_unique<ExpertStream>(models_->fine);
  g->settings = settings;
  if (settings.stop_at_eos) g->eos = tokenizer.eos_id();
  if (settings.pause_after > 0) g->pause_at = settings.pause_after;
  g->active = true;

  if (models_->generation && models_->generation->active) end_generation("replaced by a new generation", true);
  models_->generation = std::move(g);
  GenerationState state;
  state.id = ticket;
  state.prompt = prompt;
  state.prompt_ids = ids;
  state.settings = settings;
  state.causal = model->causal();
  state.running = true;
  draft_.generation = std::move(state);

  if (ticket <= stop_ticket_.load()) {
    end_generation("stopped", true);
  } else if (settings.max_new_tokens == 0) {
    end_generation("max new tokens", false);
  } else {
    draft_.job = JobProgress{"generating", 0.0, true};
    models_->generation->step_queued = true;
    enqueue([this, ticket] { step(ticket); }, kAlongside);
  }
  publish();
}

void Worker::end_generation(const std::string& reason, bool cancelled) {
  if (models_->generation) {
    models_->generation->active = false;
    models_->generation->paused = false;
  }
  GenerationState& state = draft_.generation;
  state.running = false;
  state.paused = false;
  state.finished = !cancelled;
  state.cancelled = cancelled;
  state.stop_reason = reason;
  draft_.job.reset();
}

void Worker::step(uint64_t ticket) {
  Models::Generation* g = models_->generation.get();
  if (g == nullptr || g->ticket != ticket || !g->active) return;  // ended or replaced meanwhile
  g->step_queued = false;
  try {
    if (ticket <= stop_ticket_.load()) {
      end_generation("stopped", true);
      publish();
      return;
    }
    const auto generated = static_cast<int64_t>(g->generated.size());
    if (g->pause_at && generated >= *g->pause_at) {
      g->paused = draft_.generation.paused = true;
      draft_.job.reset();
      publish();
      return;
    }
    if (g->generator->full()) {
      end_generation("context full", false);
      publish();
      return;
    }

    c10::InferenceMode inference;
    const auto start = Clock::now();
    const torch::Tensor logits = g->generator->next_logits();  // (V)
    const std::vector<int64_t>& sequence = g->generator->sequence();
    const Tokenizer* tokenizer = models_->tokenizer ? &*models_->tokenizer : nullptr;
    GeneratedToken token;
    token.alpha = per_layer(g->generator->alpha_at(static_cast<int64_t>(sequence.size()) - 1));
    const torch::Tensor base_logits = g->base->next_logits(sequence);
    const torch::Tensor fine_logits = g->fine->next_logits(sequence);
    token.top_base = top_tokens(base_logits, tokenizer);
    token.top_fine = top_tokens(fine_logits, tokenizer);
    token.top_superposed = top_tokens(logits, tokenizer);
    token.fine_affinity = fine_affinity(logits, base_logits, fine_logits);
    token.id = g->sampler->sample(logits);
    g->generator->append(token.id);
    g->generated.push_back(token.id);
    g->seconds += std::chrono::duration<double>(Clock::now() - start).count();
    if (tokenizer != nullptr) token.text = display_text(tokenizer->token_bytes(token.id));

    GenerationState& state = draft_.generation;
    const int64_t count = static_cast<int64_t>(g->generated.size());
    state.tokens.push_back(std::move(token));
    if (tokenizer != nullptr) state.text = display_text(tokenizer->decode(g->generated));
    state.tokens_per_second = g->seconds > 0.0 ? static_cast<double>(count) / g->seconds : 0.0;

    if (g->eos && g->generated.back() == *g->eos) {
      end_generation("end-of-text token", false);
    } else if (count >= g->settings.max_new_tokens) {
      end_generation("max new tokens", false);
    } else if (g->generator->full()) {
      end_generation("context full", false);
    } else if (g->pause_at && count >= *g->pause_at) {
      g->paused = state.paused = true;
      draft_.job.reset();
    } else {
      draft_.job = JobProgress{"generating", static_cast<double>(count) / g->settings.max_new_tokens, true};
      g->step_queued = true;
      enqueue([this, ticket] { step(ticket); }, kAlongside);
    }
    publish();
  } catch (const Error& e) {
    end_generation("error", true);
    fail(e.what());
  } catch (const c10::Error& e) {
    const std::string text = e.what_without_backtrace();
    end_generation("error", true);
    fail("generate: " + text.substr(0, text.find('\n')));
  } catch (const std::exception& e) {
    end_generation("error", true);
    fail(std::string("generate: ") + e.what());
  }
}

void Worker::stop_generation() {
  stop_ticket_.store(generate_tickets_.load());
  enqueue_guarded("stop_generation", [this] {
    Models::Generation* g = models_->generation.get();
    // A queued step would see the ticket too; a paused generation has none.
    if (g != nullptr && g->active && g->ticket <= stop_ticket_.load()) {
      end_generation("stopped", true);
      publish();
    }
  }, kAlongside);
}

void Worker::pause_generation() {
  enqueue_guarded("pause_generation", [this] {
    Models::Generation* g = models_->generation.get();
    if (g == nullptr || !g->active) throw Error("no generation in progress to pause");
    g->pause_at = static_cast<int64_t>(g->generated.size());  // the queued step sees it and pauses
  }, kAlongside);
}

void Worker::resume_generation(int64_t pause_after) {
  enqueue_guarded("resume_generation", [this, pause_after] {
    Models::Generation* g = models_->generation.get();
    if (g == nullptr || !g->active) throw Error("no generation in progress to resume");
    if (pause_after < 0) throw Error("pause after must be >= 0, got " + std::to_string(pause_after));
    const auto generated = static_cast<int64_t>(g->generated.size());
    g->pause_at = pause_after > 0 ? std::optional<int64_t>(generated + pause_after) : std::nullopt;
    if (!g->paused) return;
    g->paused = draft_.generation.paused = false;
    draft_.job = JobProgress{"generating", static_cast<double>(generated) / g->settings.max_new_tokens, true};
    if (!g->step_queued) {
      g->step_queued = true;
      const uint64_t ticket = g->ticket;
      enqueue([this, ticket] { step(ticket); }, kAlongside);
    }
    publish();
  }, kAlongside);
}

void Worker::reprefill() {
  enqueue_guarded("reprefill", [this] {
    models_->require();
    c10::InferenceMode inference;  // the caches were made in inference mode
    models_->require_generation().generator->reprefill();
  }, kAlongside);
}

// --- α and autoencoders --------------------------------------------------

namespace {

void check_alpha_value(double value) {
  if (!(value >= 0.0 && value <= 1.0)) throw Error("α value " + number_text(value) + " is outside [0, 1]");
}

void check_layer(const SuperposedModel& model, int64_t layer) {
  if (layer < 0 || layer >= model->n_layer()) {
    throw Error("layer " + std::to_string(layer) + " is outside 0.." + std::to_string(model->n_layer() - 1));
  }
}

// Edits a fresh copy of the α in force and installs it as the override.
// Never in place: the generator keeps the α of past positions as tensors,
// which may share storage with the current override.
template <typename Edit>
void edit_alpha(SuperposedModel& model, Edit edit) {
  torch::Tensor alpha = model->effective_alpha().to(torch::kCPU, torch::kFloat32).clone();  // (L) / (L,C)
  edit(alpha);
  model->set_alpha_override(alpha);
}

}  // namespace

void Worker::enqueue_model_edit(const char* name, std::function<void(SuperposedModel&)> edit) {
  enqueue_guarded(name, [this, edit = std::move(edit)] {
    SuperposedModel& model = models_->require();
    c10::InferenceMode inference;
    edit(model);
    refresh_superposition_info();
    publish();
  }, kAlongside);
}

void Worker::set_alpha_global(double value) {
  enqueue_model_edit("set_alpha_global", [this, value](SuperposedModel& model) {
    check_alpha_value(value);
    model->set_alpha(value);
  });
}

void Worker::set_alpha_layer(int64_t layer, double value) {
  enqueue_model_edit("set_alpha_layer", [this, layer, value](SuperposedModel& model) {
    check_layer(model, layer);
    check_alpha_value(value);
    edit_alpha(model, [&](torch::Tensor& alpha) { alpha[layer].fill_(value); });
  });
}

void Worker::set_alpha_layer_dim(int64_t layer, int64_t dim, double value) {
  enqueue_model_edit("set_alpha_layer_dim", [this, layer, dim, value](SuperposedModel& model) {
    if (model->config().alpha.variant != AlphaVariant::k2D) {
      throw Error("per-dimension α needs a 2D superposition; this one is 1D");
    }
    check_layer(model, layer);
    if (dim < 0 || dim >= model->config().alpha.n_embd) {
      throw Error("dimension " + std::to_string(dim) + " is outside 0.." +
                  std::to_string(model->config().alpha.n_embd - 1));
    }
    check_alpha_value(value);
    edit_alpha(model, [&](torch::Tensor& alpha) { alpha[layer][dim].fill_(value); });
  });
}

void Worker::set_alpha_all(std::vector<float> values) {
  enqueue_model_edit("set_alpha_all", [this, values = std::move(values)](SuperposedModel& model) {
    const std::vector<int64_t> shape = model->alpha_shape();
    int64_t expected = 1;
    for (int64_t d : shape) expected *= d;
    if (static_cast<int64_t>(values.size()) != expected) {
      throw Error("α needs " + std::to_string(expected) +
                  (shape.size() == 1 ? " values (one per layer)" : " values (layers × dimensions)") + ", got " +
                  std::to_string(values.size()));
    }
    for (float v : values) check_alpha_value(v);
    model->set_alpha_override(torch::tensor(values, torch::kFloat32).view(shape));
  });
}

namespace {

// The schedule as AlphaSchedule segments of `shape` ({L} or {L, C}). Throws
// one-line Errors naming the segment.
AlphaSchedule make_schedule(const std::vector<ScheduleSegment>& segments, const std::vector<int64_t>& shape) {
  const int64_t layers = shape.at(0);
  std::vector<AlphaSchedule::Segment> out;
  for (size_t i = 0; i < segments.size(); ++i) {
    const ScheduleSegment& s = segments[i];
    const std::string where = "α schedule: segment " + std::to_string(i + 1);
    if (s.from < 0) throw Error(where, "from position must be >= 0, got " + std::to_string(s.from));
    if (i > 0 && s.from <= segments[i - 1].from) {
      throw Error(where, "from position " + std::to_string(s.from) + " must be greater than the previous segment's " +
                             std::to_string(segments[i - 1].from));
    }
    const int64_t values = static_cast<int64_t>(s.alpha.size());
    const bool per_dimension = shape.size() == 2 && values == layers * shape[1];
    if (values != 1 && values != layers && !per_dimension) {
      throw Error(where, "α needs 1 value or " + std::to_string(layers) + " (one per layer)" +
                             (shape.size() == 2 ? " or " + std::to_string(layers * shape[1]) + " (per layer and dimension)"
                                                : std::string()) +
                             ", got " + std::to_string(values));
    }
    for (float v : s.alpha) {
      if (!(v >= 0.0f && v <= 1.0f)) throw Error(where, "α value " + number_text(v) + " is outside [0, 1]");
    }
    torch::Tensor alpha = values == 1 ? torch::full({layers}, s.alpha[0], torch::kFloat32)
                                      : torch::tensor(s.alpha, torch::kFloat32);  // (L) or (L*C)
    if (per_dimension) {
      alpha = alpha.view({layers, shape[1]});  // layer-major, as alpha_in_force
    } else if (shape.size() == 2) {
      alpha = alpha.unsqueeze(1).expand({layers, shape[1]}).contiguous();  // (L,C)
    }
    out.push_back(AlphaSchedule::Segment{s.from, alpha});
  }
  return AlphaSchedule(std::move(out), shape, "α schedule");
}

}  // namespace

void Worker::set_alpha_schedule(std::vector<ScheduleSegment> segments) {
  enqueue_guarded("set_alpha_schedule", [this, segments = std::move(segments)] {
    SuperposedModel& model = models_->require();
    c10::InferenceMode inference;
    make_schedule(segments, model->alpha_shape());  // validates
    draft_.alpha_schedule = segments;
    publish();
  }, kAlongside);
}

void Worker::clear_alpha_schedule() {
  enqueue_guarded("clear_alpha_schedule", [this] {
    draft_.alpha_schedule.clear();
    publish();
  }, kAlongside);
}

void Worker::reset_alpha() {
  enqueue_model_edit("reset_alpha", [this](SuperposedModel& model) {
    model->clear_alpha_override();
  });
}

void Worker::set_autoencoder(int64_t layer, bool on) {
  enqueue_model_edit("set_autoencoder", [this, layer, on](SuperposedModel& model) {
    check_layer(model, layer);
    if (on && !model->has_autoencoder(layer)) throw Error("layer " + std::to_string(layer) + " has no autoencoder");
    model->set_autoencoder_enabled(layer, on);
  });
}

// --- analysis ------------------------------------------------------------

void Worker::analyse_sequence(int64_t position) {
  enqueue_guarded("analyse_sequence", [this, position] { do_analyse(position); }, kAlongside);
}

void Worker::do_analyse(int64_t position) {
  SuperposedModel& model = models_->require();
  Models::Generation& g = models_->require_generation();
  const std::vector<int64_t> ids = g.generator->sequence();
  const auto T = static_cast<int64_t>(ids.size());
  const int64_t pos = position < 0 ? T - 1 : position;
  if (pos >= T) {
    throw Error("position " + std::to_string(pos) + " is outside the sequence (0.." + std::to_string(T - 1) + ")");
  }
  draft_.job = JobProgress{"analysing", -1.0, false};
  publish();

  c10::InferenceMode inference;
  const auto input = torch::tensor(ids, torch::kLong).view({1, -1}).to(models_->device);  // (1,T)
  StateRecorder states({Site::kState, Site::kBlended});
  model->forward(input, nullptr, &states);  // the α in force for every position
  StateRecorder base({Site::kResidual}), fine({Site::kResidual});
  models_->base->forward(input, nullptr, &base);
  models_->fine->forward(input, nullptr, &fine);

  // Mean over positions of ‖a − b‖₂ over C, for (1,T,C) states, in float64.
  auto mean_l2 = [](const torch::Tensor& a, const torch::Tensor& b) {
    return (a[0].to(torch::kFloat64) - b[0].to(torch::kFloat64)).pow(2).sum(1).sqrt().mean().item<double>();
  };
  const std::vector<float> alpha = per_layer(model->effective_alpha());
  SequenceAnalysis out;
  out.generation_id = g.ticket;
  out.ids = ids;
  out.position = pos;
  out.causal = model->causal();
  const Tokenizer* tokenizer = models_->tokenizer ? &*models_->tokenizer : nullptr;
  for (int64_t id : ids) out.texts.push_back(tokenizer != nullptr ? display_text(tokenizer->token_bytes(id)) : "");
  for (int64_t l = 0; l < model->n_layer(); ++l) {
    LayerAnalysis layer;
    layer.alpha = alpha[static_cast<size_t>(l)];
    layer.autoencoder = model->autoencoder_enabled(l);
    const auto& s = states.at(Site::kState, l + 1);  // (1,T,C)
    layer.l2_base = mean_l2(s, base.at(Site::kResidual, l + 1));
    layer.l2_fine = mean_l2(s, fine.at(Site::kResidual, l + 1));
    layer.l2_base_fine = mean_l2(base.at(Site::kResidual, l + 1), fine.at(Site::kResidual, l + 1));
    layer.reconstruction = layer.autoencoder ? mean_l2(s, states.at(Site::kBlended, l)) : 0.0;
    out.layers.push_back(layer);
  }
  GPT2& head = models_->base;
  const auto& weight = head->wte->weight;
  for (int64_t i = 0; i <= model->n_layer(); ++i) {
    const auto x = states.at(Site::kState, i)[0][pos].to(weight.device(), weight.scalar_type()).view({1, 1, -1});
    out.lens.push_back(top_tokens(head->head(head->ln_f(x))[0][0], tokenizer));  // (1,1,C) -> (V)
  }
  draft_.analysis = std::move(out);
  draft_.job.reset();
  publish();
}

// --- t-SNE and neuron maps ------------------------------------------------

namespace {

TokenSource token_source(const Capture& capture, const Tokenizer& tokenizer, int64_t row) {
  const ContextSnippet snippet = context_snippet(capture, tokenizer, row, 12, 6);
  TokenSource out;
  out.document = snippet.document;
  out.position = snippet.position;
  out.before = display_text(snippet.before);
  out.token = display_text(snippet.token);
  out.after = display_text(snippet.after);
  if (snippet.document >= 0 && snippet.document < static_cast<int64_t>(capture.sources.size())) {
    out.source = capture.sources[static_cast<size_t>(snippet.document)];
  }
  return out;
}

std::vector<Document> read_data(const std::string& path) {
  if (path.empty()) throw Error("data: no file named; give a labeled JSONL file");
  return read_jsonl(path);
}

}  // namespace

uint64_t Worker::run_tsne(const TsneRequest& request) {
  const uint64_t ticket = tsne_tickets_.fetch_add(1) + 1;
  enqueue_guarded("t-SNE", [this, ticket, request] { do_tsne(ticket, request); });
  return ticket;
}

void Worker::cancel_tsne() {
  tsne_cancel_.store(tsne_tickets_.load());
  enqueue_guarded("cancel_tsne", [this] {
    if (models_->tsne && draft_.tsne && draft_.tsne->running) {
      models_->tsne.reset();
      draft_.tsne->running = draft_.tsne->capturing = false;
      draft_.tsne->cancelled = true;
      draft_.job.reset();
      publish();
    }
  }, kAlongside);
}

void Worker::cancel_jobs() {
  stop_generation();
  cancel_tsne();
  cancel_eval();
  cancel_import();
}

void Worker::do_tsne(uint64_t ticket, const TsneRequest& request) {
  SuperposedModel& model = models_->require();
  if (!models_->tokenizer) throw Error("t-SNE: no tokenizer was found for the experts");
  if (ticket <= tsne_cancel_.load()) return;
  if (request.layers.empty()) throw Error("t-SNE: choose at least one state");
  std::vector<int64_t> layers = request.layers;
  std::sort(layers.begin(), layers.end());
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i] < 0 || layers[i] > model->n_layer()) {
      throw Error("t-SNE state " + std::to_string(layers[i]) + " is outside 0.." + std::to_string(model->n_layer()));
    }
    if (i > 0 && layers[i] == layers[i - 1]) {
      throw Error("t-SNE state " + std::to_string(layers[i]) + " is chosen twice");
    }
  }
  if (request.iterations < 1) throw Error("t-SNE iterations must be >= 1, got " + std::to_string(request.iterations));
  if (request.chunk < 1) throw Error("t-SNE chunk must be >= 1, got " + std::to_string(request.chunk));
  if (request.max_documents < 0) {
    throw Error("max documents must be >= 0 (0 = all), got " + std::to_string(request.max_documents));
  }
  CaptureOptions options;
  if (request.base) options.models.push_back(CaptureModel::kBase);
  if (request.fine) options.models.push_back(CaptureModel::kFine);
  if (request.superposition) options.models.push_back(CaptureModel::kSuperposition);
  if (options.models.empty()) throw Error("t-SNE: choose at least one model");
  options.residual_layers = layers;
  options.max_documents = request.max_documents;
  options.progress = [this, ticket](int64_t done, int64_t total) {
    draft_.job = JobProgress{"capturing for t-SNE", total > 0 ? 0.5 * done / total : -1.0, true};
    publish();
    return ticket > tsne_cancel_.load();
  };
  const std::vector<Document> documents = read_data(request.data);

  models_->tsne.reset();
  TsneMap map;
  map.id = ticket;
  map.request = request;
  map.iterations = request.iterations;
  map.capturing = map.running = true;
  map.causal = model->causal();
  draft_.tsne = map;
  draft_.job = JobProgress{"capturing for t-SNE", 0.0, true};
  publish();

  c10::InferenceMode inference;
  Capture capture;
  try {
    capture = capture_states(models_->base_files, models_->fine_files, model, documents, *models_->tokenizer, options);
  } catch (...) {
    draft_.tsne->running = draft_.tsne->capturing = false;
    draft_.tsne->cancelled = ticket <= tsne_cancel_.load();
    draft_.job.reset();
    if (draft_.tsne->cancelled) {
      publish();
      return;
    }
    throw;
  }
  TsneMap& out = *draft_.tsne;
  const torch::Tensor data = tsne_points(capture, layers, out);  // (P,C), P = models × layers × N
  for (int64_t r = 0; r < out.rows; ++r) out.sources.push_back(token_source(capture, *models_->tokenizer, r));

  TsneOptions tsne_options;
  tsne_options.perplexity = request.perplexity;
  tsne_options.iterations = request.iterations;
  tsne_options.exaggeration_iterations = std::min<int64_t>(250, request.iterations / 4);
  tsne_options.device = models_->device;
  auto run = std::make_unique<Models::TsneRun>();
  run->ticket = ticket;
  run->chunk = request.chunk;
  try {
    run->tsne = std::make_unique<Tsne>(data, tsne_options);
  } catch (...) {
    out.running = out.capturing = false;
    draft_.job.reset();
    throw;
  }
  out.embedding = to_floats(run->tsne->embedding());
  out.capturing = false;
  models_->tsne = std::move(run);
  draft_.job = JobProgress{"t-SNE", 0.5, true};
  publish();
  enqueue([this, ticket] { tsne_step(ticket); }, kAlongside);
}

void Worker::tsne_step(uint64_t ticket) {
  Models::TsneRun* run = models_->tsne.get();
  if (run == nullptr || run->ticket != ticket || !draft_.tsne || draft_.tsne->id != ticket) return;
  TsneMap& map = *draft_.tsne;
  try {
    if (ticket <= tsne_cancel_.load()) {
      map.running = false;
      map.cancelled = true;
      draft_.job.reset();
      models_->tsne.reset();
      publish();
      return;
    }
    c10::InferenceMode inference;
    run->tsne->step(run->chunk);
    map.iteration = run->tsne->iteration();
    map.embedding = to_floats(run->tsne->embedding());
    if (run->tsne->done()) {
      map.running = false;
      map.finished = true;
      draft_.job.reset();
      models_->tsne.reset();
    } else {
      draft_.job = JobProgress{"t-SNE", 0.5 + 0.5 * static_cast<double>(map.iteration) / map.iterations, true};
      enqueue([this, ticket] { tsne_step(ticket); }, kAlongside);
    }
    publish();
  } catch (const std::exception& e) {
    map.running = false;
    models_->tsne.reset();
    const c10::Error* torch_error = dynamic_cast<const c10::Error*>(&e);
    const std::string text = torch_error ? torch_error->what_without_backtrace() : e.what();
    fail("t-SNE: " + text.substr(0, text.find('\n')));
  }
}

void Worker::compute_neurons(const NeuronRequest& request) {
  enqueue_guarded("neurons", [this, request] { do_neurons(request); });
}

void Worker::do_neurons(const NeuronRequest& request) {
  SuperposedModel& model = models_->require();
  if (!models_->tokenizer) throw Error("neurons: no tokenizer was found for the experts");
  if (request.max_documents < 0) {
    throw Error("max documents must be >= 0 (0 = all), got " + std::to_string(request.max_documents));
  }
  const std::vector<Document> documents = read_data(request.data);
  CaptureOptions options;
  options.max_documents = request.max_documents;
  options.progress = [this](int64_t done, int64_t total) {
    draft_.job = JobProgress{"capturing for neurons", total > 0 ? 0.8 * done / total : -1.0, false};
    publish();
    return true;
  };
  draft_.job = JobProgress{"capturing for neurons", 0.0, false};
  publish();
  c10::InferenceMode inference;
  Capture capture;
  NeuronReport report;
  try {
    capture = capture_states(models_->base_files, models_->fine_files, model, documents, *models_->tokenizer, options);
    draft_.job = JobProgress{"neuron statistics", 0.8, false};
    publish();
    NeuronReportOptions report_options;
    report_options.diversity = request.diversity;
    report_options.device = models_->device;
    report = neuron_report(capture, report_options);
  } catch (...) {
    draft_.job.reset();
    throw;
  }
  NeuronMaps maps;
  maps.id = draft_.neurons ? draft_.neurons->id + 1 : 1;
  maps.request = request;
  maps.causal = capture.causal;
  maps.rows = capture.rows();
  maps.layers = report.layers;
  auto add = [&](const std::string& statistic, const std::map<std::string, torch::Tensor>& per_model) {
    for (const auto& [name, map] : per_model) {
      if (!map.defined()) continue;
      maps.maps[statistic][name] = to_floats(map);
      maps.neurons = map.size(1);
    }
  };
  add("normalized difference", report.normalized_difference);
  add("sparsity", report.sparsity);
  add("mean |activation|", report.mean_activation);
  if (request.diversity) add("diversity", report.diversity);
  for (const auto& [name, map] : report.normalized_difference) maps.models.push_back(name);
  models_->neuron_capture = std::move(capture);
  draft_.neurons = std::move(maps);
  draft_.neuron_detail.reset();
  draft_.job.reset();
  publish();
}

void Worker::neuron_detail(const std::string& model_name, int64_t layer, int64_t neuron) {
  enqueue_guarded("neuron_detail", [this, model_name, layer, neuron] {
    if (!models_->neuron_capture) throw Error("neurons: compute the neuron maps first");
    if (!models_->tokenizer) throw Error("neurons: no tokenizer was found for the experts");
    const Capture& capture = *models_->neuron_capture;
    const torch::Tensor acts = capture.tensor(Capture::residual_name(model_name, layer)).to(torch::kFloat32);  // (N,C)
    NeuronDetail detail;
    detail.model = model_name;
    detail.layer = layer;
    detail.neuron = neuron;
    for (const NeuronContext& c : top_activations(acts, neuron, 12)) {
      detail.contexts.push_back(token_source(capture, *models_->tokenizer, c.row));
      detail.activations.push_back(static_cast<float>(c.activation));
    }
    const std::vector<float> column = to_floats(acts.select(1, neuron));
    constexpr int kBins = 40;
    detail.histogram.assign(kBins, 0.0f);
    if (!column.empty()) {
      detail.min = *std::min_element(column.begin(), column.end());
      detail.max = *std::max_element(column.begin(), column.end());
      const float width = std::max(detail.max - detail.min, 1e-12f);
      for (float v : column) {
        const int bin = std::clamp(static_cast<int>((v - detail.min) / width * kBins), 0, kBins - 1);
        detail.histogram[static_cast<size_t>(bin)] += 1.0f;
      }
    }
    draft_.neuron_detail = std::move(detail);
    publish();
  }, kAlongside);
}

// --- trajectories and evaluation ----------------------------------------------

void Worker::compute_trajectories(const TrajectoryRequest& request) {
  enqueue_guarded("trajectories", [this, request] { do_trajectories(request); });
}

void Worker::compute_token_trajectories() {
  enqueue_guarded("token trajectories", [this] { do_token_trajectories(); }, kAlongside);
}

void Worker::do_trajectories(const TrajectoryRequest& request) {
  SuperposedModel& model = models_->require();
  if (!models_->tokenizer) throw Error("trajectories: no tokenizer was found for the experts");
  if (request.max_documents < 0) {
    throw Error("max documents must be >= 0 (0 = all), got " + std::to_string(request.max_documents));
  }
  CaptureOptions options;
  if (request.base) options.models.push_back(CaptureModel::kBase);
  if (request.fine) options.models.push_back(CaptureModel::kFine);
  if (request.superposition) options.models.push_back(CaptureModel::kSuperposition);
  if (options.models.empty()) throw Error("trajectories: choose at least one model");
  options.positions.mode = CapturePositions::kMean;
  options.max_documents = request.max_documents;
  options.progress = [this](int64_t done, int64_t total) {
    draft_.job = JobProgress{"capturing for trajectories", total > 0 ? 0.9 * done / total : -1.0, false};
    publish();
    return true;
  };
  const std::vector<Document> documents = read_data(request.data);
  draft_.job = JobProgress{"capturing for trajectories", 0.0, false};
  publish();
  c10::InferenceMode inference;
  TrajectoryMap map;
  try {
    const Capture capture =
        capture_states(models_->base_files, models_->fine_files, model, documents, *models_->tokenizer, options);
    map = mean_trajectories(capture, 2);
  } catch (...) {
    draft_.job.reset();
    throw;
  }
  Trajectories out;
  out.id = draft_.trajectories ? draft_.trajectories->id + 1 : 1;
  out.request = request;
  out.causal = model->causal();
  out.layers = map.layers;
  for (int k = 0; k < 2; ++k) {
    out.explained[k] = map.pca.total_variance > 0
                           ? map.pca.explained_variance[k].item<double>() / map.pca.total_variance
                           : 0.0;
  }
  for (const TrajectoryLine& line : map.lines) {
    out.lines.push_back({line.model, line.domain, line.label, line.rows, to_floats(line.points)});  // (S,2)
  }
  models_->trajectory_map = std::move(map);
  draft_.trajectories = std::move(out);
  draft_.job.reset();
  do_token_trajectories();  // publishes
}

void Worker::do_token_trajectories() {
  if (!models_->trajectory_map || !draft_.trajectories) return;
  Trajectories& out = *draft_.trajectories;
  out.tokens.clear();
  out.token_texts.clear();
  out.token_alpha.clear();
  out.generation_id = 0;
  ++out.token_version;
  if (!models_->generation || models_->generation->generator->sequence().empty()) {
    publish();
    return;
  }
  SuperposedModel& model = models_->require();
  const TrajectoryMap& map = *models_->trajectory_map;
  const std::vector<int64_t> ids = models_->generation->generator->sequence();
  c10::InferenceMode inference;
  const auto input = torch::tensor(ids, torch::kLong).view({1, -1}).to(models_->device);  // (1,T)
  // The map's models in its line order, each once.
  std::vector<std::string> names;
  for (const TrajectoryLine& line : map.lines) {
    if (std::find(names.begin(), names.end(), line.model) == names.end()) names.push_back(line.model);
  }
  for (const std::string& name : names) {
    const bool superposed = name == "superposition";
    const Site site = superposed ? Site::kState : Site::kResidual;
    StateRecorder recorder({site});
    if (superposed) {
      model->forward(input, nullptr, &recorder);  // the α in force for every position
    } else {
      (name == "base" ? models_->base : models_->fine)->forward(input, nullptr, &recorder);
    }
    std::vector<torch::Tensor> per_layer_states;
    for (int64_t i : map.layers) per_layer_states.push_back(recorder.at(site, i)[0]);  // (T,C)
    const auto states = torch::stack(per_layer_states, 1);                              // (T,S,C)
    out.tokens.push_back({name, to_floats(project_trajectories(map, states))});        // (T,S,2)
  }
  const Tokenizer* tokenizer = models_->tokenizer ? &*models_->tokenizer : nullptr;
  for (int64_t id : ids) out.token_texts.push_back(tokenizer != nullptr ? display_text(tokenizer->token_bytes(id)) : "");
  out.token_alpha = per_layer(model->effective_alpha());
  out.generation_id = models_->generation->ticket;
  publish();
}

uint64_t Worker::run_eval(const EvalRequest& request) {
  const uint64_t ticket = eval_tickets_.fetch_add(1) + 1;
  enqueue_guarded("eval", [this, ticket, request] { do_eval(ticket, request); });
  return ticket;
}

void Worker::cancel_eval() { eval_cancel_.store(eval_tickets_.load()); }

namespace {

// The autoencoder switch of every layer (false where there is none).
std::vector<bool> autoencoder_switches(const SuperposedModel& model) {
  std::vector<bool> on(static_cast<size_t>(model->n_layer()));
  for (int64_t l = 0; l < model->n_layer(); ++l) on[static_cast<size_t>(l)] = model->autoencoder_enabled(l);
  return on;
}

void set_autoencoder_switches(SuperposedModel& model, const std::vector<bool>& on) {
  for (int64_t l = 0; l < model->n_layer(); ++l) {
    if (model->has_autoencoder(l)) model->set_autoencoder_enabled(l, on[static_cast<size_t>(l)]);
  }
}

JobProgress eval_job(int64_t done, int64_t total) {
  return JobProgress{"evaluating", total > 0 ? static_cast<double>(done) / total : -1.0, true};
}

}  // namespace

void Worker::do_eval(uint64_t ticket, const EvalRequest& request) {
  SuperposedModel& model = models_->require();
  if (!models_->tokenizer) throw Error("eval: no tokenizer was found for the experts");
  EvalResults results;
  results.id = ticket;
  results.request = request;
  if (ticket <= eval_cancel_.load()) {
    results.cancelled = true;
    draft_.eval = std::move(results);
    publish();
    return;
  }
  EvalOptions options;
  options.max_documents = request.max_documents;
  options.seq_len = request.seq_len > 0 ? request.seq_len : std::min<int64_t>(128, model->context());
  options.batch_size = request.batch_size;
  options.models = parse_eval_models(request.models, true);
  // The switches the evaluation runs with, and the user's, which the commands
  // run between batches see and may change. Loads never run in between (a
  // queued one ends the evaluation), so `model` stays the loaded
  // superposition throughout.
  const std::vector<bool> eval_switches = autoencoder_switches(model);
  std::vector<bool> user_switches = eval_switches;
  bool stopping = false;
  options.progress = [&, ticket](int64_t done, int64_t total) {
    draft_.eval->batches_done = done;
    draft_.eval->batches = total;
    draft_.job = eval_job(done, total);
    publish();
    if (ticket <= eval_cancel_.load()) return false;
    set_autoencoder_switches(model, user_switches);
    stopping = !run_alongside() || model_replacement_queued();
    user_switches = autoencoder_switches(model);
    set_autoencoder_switches(model, eval_switches);
    draft_.job = eval_job(done, total);  // a generation in between may have set or cleared it
    return !stopping && ticket > eval_cancel_.load();
  };
  const std::vector<Document> documents = read_data(request.data);
  results.running = true;
  draft_.eval = results;
  draft_.job = eval_job(0, 0);
  publish();
  EvalReport report;
  try {
    c10::InferenceMode inference;
    report = evaluate(models_->base_files, models_->fine_files, model, documents, *models_->tokenizer, options);
  } catch (...) {
    set_autoencoder_switches(model, user_switches);
    draft_.eval->running = false;
    draft_.eval->cancelled = stopping || ticket <= eval_cancel_.load();
    draft_.job.reset();
    if (draft_.eval->cancelled) {
      publish();
      return;
    }
    throw;
  }
  set_autoencoder_switches(model, user_switches);
  EvalResults& out = *draft_.eval;
  out.running = false;
  out.finished = true;
  out.causal = report.causal;
  out.seq_len = report.seq_len;
  out.missing_domains = report.missing_domains;
  for (const EvalRow& r : report.rows) {
    out.rows.push_back({r.model, r.domain, r.ppl, r.ppl_lo, r.ppl_hi, r.acc, r.jsd, r.cosine, r.mse, r.tokens,
                        r.documents, r.causal});
  }
  for (const EvalLayerRow& r : report.layers) {
    out.layers.push_back({r.model, r.domain, r.layer, r.l2_base, r.l2_fine, r.l2_base_fine, r.causal});
  }
  draft_.job.reset();
  publish();
}

}  // namespace superpose::studio
