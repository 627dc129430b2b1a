// The studio's worker thread: owns the models, runs commands in order and
// publishes immutable snapshots of plain data for the UI to draw from.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "model/config.h"

namespace superpose {
class SuperposedModel;  // model/superposed.h
}  // namespace superpose

namespace superpose::studio {

// Tokens listed per distribution in GeneratedToken and the logit lens.
inline constexpr int kTopTokens = 5;

// One row of the tensor table.
struct TensorRow {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t bytes = 0;
};

// A token and its probability in one next-token distribution.
struct TopToken {
  int64_t id = 0;
  std::string text;  // display form: invalid or partial UTF-8 shown as U+FFFD
  float prob = 0.0f;
};

// One segment of an α schedule over positions (AlphaSchedule::Segment as
// plain data): applies from token position `from` (0-based, counting the
// prompt) up to the next segment's `from`.
struct ScheduleSegment {
  int64_t from = 0;
  // One value (every layer and dimension), L values (per layer; 2D: every
  // dimension of the layer) or, for 2D, L·C values (per layer and dimension,
  // layer-major like SuperpositionInfo::alpha_in_force), each in [0, 1].
  std::vector<float> alpha;
  bool operator==(const ScheduleSegment& o) const { return from == o.from && alpha == o.alpha; }
  bool operator!=(const ScheduleSegment& o) const { return !(*this == o); }
};

// The 1D α of SPEC §2 from control points: clamp(basis · c + 0.1 b, 0, 1).
// basis (L,K) row-major, control (K), bias (L) -> (L). Asserts the sizes.
std::vector<float> alpha_from_control_points(const std::vector<float>& basis, const std::vector<float>& control,
                                             const std::vector<float>& bias);
// Greville abscissae of the clamped uniform knot vector of alpha.h in [0, 1]
// (K values): where control point j has its most weight; layer l sits at
// l / (L - 1) on the same axis.
std::vector<float> greville_abscissae(int64_t n_control, int64_t degree);

// The loaded superposition, as the Alpha and Layers panels need it.
struct SuperpositionInfo {
  std::string dir;                 // empty for a pair loaded with load_experts()
  std::string base_dir, fine_dir;  // the experts actually loaded
  std::string device;              // "cpu", "cuda:0"
  std::string dtype;               // "f32", "bf16", "f16"
  std::string variant;             // "1d" / "2d"
  bool causal = true;              // false: a centered convolution reads token t+1; label every result
  std::string convolution;         // "causal" / "centered" / "none" (no autoencoder)
  std::string embedding_blend;     // "mean-alpha" / "base"
  int64_t n_layer = 0;             // L
  int64_t n_embd = 0;              // C
  int64_t context = 0;             // n_positions
  std::vector<int64_t> alpha_shape;   // {L} or {L, C}
  // α, flattened row-major to L or L·C values (2D: [l * C + d]).
  std::vector<float> alpha_learned;
  std::vector<float> alpha_in_force;  // the override when one is set, else alpha_learned
  bool alpha_overridden = false;
  // 1D only (empty for 2D): the learned spline, SPEC §2.
  int64_t n_control = 0, degree = 0;     // K, k
  std::vector<float> alpha_basis;        // (L,K) row-major
  std::vector<float> control_points;     // (K) learned
  std::vector<float> layer_bias;         // (L) learned
  std::vector<bool> has_autoencoder;      // per layer
  std::vector<bool> autoencoder_enabled;  // per layer; false where there is none
  std::string tokenizer_dir;  // empty when none was found (generation then fails with a message)
};

// How generate() chooses tokens.
struct GenerationSettings {
  int64_t max_new_tokens = 50;  // >= 0; 0 only tokenizes the prompt (for analyse_sequence)
  double temperature = 1.0;     // ignored when greedy
  int64_t top_k = 0;            // 0 = no limit
  double top_p = 1.0;           // (0, 1]
  uint64_t seed = 0;            // same seed, same tokens
  bool greedy = false;          // argmax
  bool stop_at_eos = true;      // stop after emitting <|endoftext|>
  // Pause (not stop) once this many tokens have been generated; 0 = never.
  // resume_generation() continues. For step-by-step use and deterministic tests.
  int64_t pause_after = 0;
};

// One generated token.
struct GeneratedToken {
  int64_t id = 0;
  std::string text;  // display form of the token's bytes (see TopToken::text)
  // The α in force when it was predicted, per layer (L): the α that blended
  // the position before it. 2D: the mean over dimensions.
  std::vector<float> alpha;
  // The most likely next tokens at that step (temperature 1, before
  // top-k/top-p) of each expert on the same sequence and of the superposition.
  std::vector<TopToken> top_base, top_fine, top_superposed;
  // Which expert the superposition's distribution at that step is closer to:
  // 0 the base's … 1 the fine expert's (fine_affinity in analysis/expert_affinity.h).
  float fine_affinity = 0.5f;
};

// The sequence being (or last) generated.
struct GenerationState {
  uint64_t id = 0;  // counts generate() commands that started; 0 = none yet
  std::string prompt;
  std::vector<int64_t> prompt_ids;
  std::vector<GeneratedToken> tokens;
  std::string text;     // the generated tokens decoded together (display form)
  GenerationSettings settings;
  bool causal = true;   // of the superposition that generated it
  bool running = false;    // started and not ended (true while paused)
  bool paused = false;     // waiting for resume_generation()
  bool finished = false;   // ended by itself: max tokens, end-of-text or full context
  bool cancelled = false;  // ended by stop_generation() or a newer generate()/load
  std::string stop_reason;  // "max new tokens", "end-of-text token", "context full", "stopped", ...
  double tokens_per_second = 0.0;  // over the time spent computing tokens (pauses excluded)
};

// Per-layer numbers for the analysed sequence, block l = 0..L-1.
struct LayerAnalysis {
  float alpha = 0.0f;       // α_l used (2D: mean over dimensions)
  bool autoencoder = false;  // the autoencoder ran at l
  // Means over positions of ‖·‖₂ over C: the superposition's state l+1
  // (after block l and its autoencoder) against each expert's own hidden
  // state l+1 (independent passes, HF convention: the last one includes
  // ln_f, as in training and `superpose eval`), and the experts' distance.
  double l2_base = 0.0, l2_fine = 0.0, l2_base_fine = 0.0;
  // Mean over positions of ‖state l+1 − blended_l‖₂: what the autoencoder
  // changed; 0 where it is off.
  double reconstruction = 0.0;
};

// What analyse_sequence() computed.
struct SequenceAnalysis {
  uint64_t generation_id = 0;      // GenerationState::id of the sequence analysed
  std::vector<int64_t> ids;        // the sequence: prompt + generated tokens at that moment
  std::vector<std::string> texts;  // display form of each token
  int64_t position = 0;            // the logit lens' position, 0..T-1
  bool causal = true;
  // α in force at analysis time (one α for every position), per layer
  // (2D: mean over dimensions), and the autoencoder switches of that moment.
  std::vector<LayerAnalysis> layers;  // L rows
  // Logit lens at `position`: row i = base ln_f + head applied to state i,
  // i = 0..L (0: blended embeddings; L: the superposition's own output).
  std::vector<std::vector<TopToken>> lens;
};

// What run_tsne() maps: the chosen states (layers) of the chosen models
// over a labeled JSONL set, every text token; one point per model, state and
// token, all in one map.
struct TsneRequest {
  std::vector<int64_t> layers = {6};  // state indices 0..L, distinct, at least one
  bool base = true, fine = true, superposition = true;
  int64_t max_documents = 20;  // per domain; 0 = all
  std::string data;            // JSONL path
  double perplexity = 30.0;
  int64_t iterations = 500;
  int64_t chunk = 10;          // iterations per queued step
};

// Where a point of a map (t-SNE or neuron contexts) came from.
struct TokenSource {
  int64_t document = 0, position = 0;
  std::string before, token, after;  // display form
  std::string source;                // the document's "source", may be empty
};

// The t-SNE map being (or last) computed. Points come in blocks of `rows`,
// models outermost: point p is capture row p % rows of state
// layers[(p / rows) % layers.size()] of model models[p / rows / layers.size()].
struct TsneMap {
  uint64_t id = 0;  // counts run_tsne() commands that started
  TsneRequest request;
  int64_t iteration = 0, iterations = 0;
  bool capturing = false;  // the capture is running (no embedding yet)
  bool running = false, finished = false, cancelled = false;
  bool causal = true;
  int64_t rows = 0;                     // capture rows (text tokens)
  std::vector<float> embedding;         // (P,2) row-major, P = models × layers × rows
  std::vector<std::string> models;      // "base", "fine", "superposition" as requested
  std::vector<int64_t> layers;          // the states mapped, ascending
  std::vector<std::string> domains;     // the data's domains, index = label
  std::vector<int> row_domains;         // (rows): index into domains
  std::vector<TokenSource> sources;     // (rows)

  int64_t points() const { return static_cast<int64_t>(embedding.size() / 2); }
  // Point p's model, state and domain as indices into models, layers, domains.
  int model_of(int64_t p) const { return static_cast<int>(p / rows / static_cast<int64_t>(layers.size())); }
  int layer_of(int64_t p) const { return static_cast<int>((p / rows) % static_cast<int64_t>(layers.size())); }
  int domain_of(int64_t p) const { return row_domains[static_cast<size_t>(p % rows)]; }
};

// What a t-SNE map's points are coloured by (tsne_colouring() in tsne_map.h).
enum class TsneColour { kModelDomain, kModel, kDomain, kLayer };

// What compute_neurons() captures and summarises.
struct NeuronRequest {
  int64_t max_documents = 20;  // per domain; 0 = all
  std::string data;            // JSONL path
  bool diversity = false;      // slower: k-means over contexts
};

// Layer × neuron maps of the residual states 0..L-1 of base, fine and the
// superposition, each (layers.size(), neurons) row-major.
struct NeuronMaps {
  uint64_t id = 0;
  NeuronRequest request;
  bool causal = true;
  int64_t rows = 0, neurons = 0;
  std::vector<std::string> models;
  std::vector<int64_t> layers;
  // statistic name -> model -> map; statistics: "normalized difference",
  // "sparsity", "mean |activation|", "diversity" (when computed).
  std::map<std::string, std::map<std::string, std::vector<float>>> maps;
};

// One neuron's top contexts and activation histogram (neuron_detail()).
struct NeuronDetail {
  std::string model;
  int64_t layer = 0, neuron = 0;
  std::vector<TokenSource> contexts;  // highest activation first
  std::vector<float> activations;     // of `contexts`
  std::vector<float> histogram;       // counts per bin over every row
  float min = 0.0f, max = 0.0f;       // the histogram's range
};

// What compute_trajectories() captures: the mean state of every document
// (positions "mean") at every residual state of the chosen models.
struct TrajectoryRequest {
  int64_t max_documents = 20;  // per domain; 0 = all
  std::string data;            // JSONL path
  bool base = true, fine = true, superposition = true;
};

// One model × domain line of the trajectory map.
struct TrajectoryLineData {
  std::string model, domain;
  int64_t label = 0;
  int64_t rows = 0;           // capture rows (documents) averaged per layer
  std::vector<float> points;  // (S,2) row-major, S = Trajectories::layers.size()
};

// One model's states of the current sequence on the map's plane.
struct TokenTrajectoryData {
  std::string model;
  std::vector<float> points;  // (T,S,2) row-major: token t, layer j
};

// Mean-state trajectories across layers on one PCA plane (mean_trajectories)
// and, on the same plane, the current sequence's token trajectories under
// the α in force when they were computed.
struct Trajectories {
  uint64_t id = 0;  // counts successful compute_trajectories()
  TrajectoryRequest request;
  bool causal = true;
  std::vector<int64_t> layers;  // (S) state indices along every line
  std::vector<TrajectoryLineData> lines;  // by model, then label
  double explained[2] = {0.0, 0.0};  // share of the total variance along PC1, PC2
  // The current sequence (empty until a sequence exists).
  uint64_t generation_id = 0;            // GenerationState::id of the sequence projected
  std::vector<std::string> token_texts;  // (T) display form
  std::vector<float> token_alpha;        // α in force per layer (L) when projected
  std::vector<TokenTrajectoryData> tokens;  // one per model of the map
  uint64_t token_version = 0;  // counts token projections
};

// What run_eval() evaluates (analysis evaluate()).
struct EvalRequest {
  int64_t max_documents = 20;  // per domain; 0 = all
  std::string data;            // JSONL path
  std::string models = "base,fine,superposition,superposition-a0,superposition-a1,linear,alpha-hard";
  int64_t seq_len = 0;      // predictions per window; 0 = min(128, the experts' context)
  int64_t batch_size = 16;
};

// EvalRow / EvalLayerRow (analysis/eval.h) as plain data.
struct EvalResultRow {
  std::string model, domain;
  double ppl = 0, ppl_lo = 0, ppl_hi = 0, acc = 0, jsd = 0, cosine = 0, mse = 0;
  int64_t tokens = 0, documents = 0;
  bool causal = true;
};
struct EvalLayerResult {
  std::string model, domain;
  int64_t layer = 0;
  double l2_base = 0, l2_fine = 0, l2_base_fine = 0;
  bool causal = true;
};

// The evaluation being (or last) run.
struct EvalResults {
  uint64_t id = 0;  // counts run_eval() commands
  EvalRequest request;
  bool running = false, finished = false, cancelled = false;
  int64_t batches_done = 0, batches = 0;  // progress; batches is 0 until the windows are counted
  bool causal = true;
  int64_t seq_len = 0;
  std::vector<EvalResultRow> rows;      // by model, then domain
  std::vector<EvalLayerResult> layers;  // by model, domain, layer
  std::vector<std::string> missing_domains;
};

// Where and how load_superposition() / load_experts() put the models.
struct LoadSettings {
  std::optional<std::filesystem::path> base, fine;  // override the experts named in superposition.json
  std::string device = "auto";  // "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:N"
  std::string dtype = "f32";    // "f32"; "bf16" / "f16" on CUDA only
};

// Where the studio's imports go: $XDG_CACHE_HOME/superpose-studio/imported
// when that is an absolute path, else $HOME/.cache/superpose-studio/imported,
// else <temp dir>/superpose-studio/imported. Null or empty means unset.
std::filesystem::path import_cache_root(const char* xdg_cache_home, const char* home);
std::filesystem::path import_cache_root();  // from the environment
// Where an import of `checkpoint` goes under `root`: root/<file stem>, its
// leading dots dropped ("checkpoint" when nothing is left).
std::filesystem::path import_folder(const std::filesystem::path& root, const std::filesystem::path& checkpoint);

// How many imports an import folder keeps by default (ImportRequest::keep).
inline constexpr size_t kImportsKept = 8;

// What import_seed() converts and where the result goes.
struct ImportRequest {
  std::filesystem::path checkpoint;  // a notebook's torch.save file (.pt) of the α and autoencoder state dicts
  std::filesystem::path base, fine;  // the HF GPT-2 folders it was trained over
  // The new superposition folder is import_folder(out_root, checkpoint). It
  // is written beside that name (a hidden folder) and swapped in whole before
  // loading, so an earlier import of the same name is replaced at once, and
  // stays when the import fails or is cancelled. Missing folders of out_root
  // are made.
  std::filesystem::path out_root;
  // Once an import has finished (imported and loaded), the imports in
  // out_root (its folders holding superposition.json, hidden ones aside)
  // beyond the `keep` most recently used are removed: the one just imported
  // and the superposition loaded always stay and count. Recency is the
  // folder's modification time, which an import sets and a load of a folder
  // directly under import_cache_root() refreshes. 0 keeps every import.
  size_t keep = kImportsKept;
  LoadSettings load;  // how the imported superposition is then loaded
  // Optional; called on the worker thread as each stage is about to begin
  // (ImportStatus::stage, fraction). Returning false cancels the import as
  // cancel_import() does (at "loading" too: loading has not begun yet).
  std::function<bool(const std::string& stage, double fraction)> progress;
};

// The import being (or last) run.
struct ImportStatus {
  uint64_t id = 0;  // counts import_seed() commands
  std::string checkpoint;
  std::string out_dir;  // the folder written; empty until chosen
  // "reading the checkpoint", "loading the experts", "building the
  // superposition", "writing", then "loading" (no longer cancellable).
  std::string stage;
  double fraction = 0.0;
  bool running = false, finished = false, failed = false;  // finished: imported and loaded
  bool cancelled = false;  // ended by cancel_import(): nothing written, the loaded superposition kept
  std::string message;  // one line when failed (also the snapshot's message)
};

// A long job in progress.
struct JobProgress {
  std::string name;        // "loading /path", "generating", "analysing"
  double fraction = -1.0;  // 0..1, or < 0 when unknown
  bool cancellable = false;  // the status bar's Cancel (cancel_jobs()) ends it
};

// What the UI draws from. Immutable once published; plain data, no tensors.
struct Snapshot {
  enum class Status { kEmpty, kLoading, kReady, kFailed };
  uint64_t version = 0;  // increases with every published snapshot
  // The last load command (load_model, load_superposition, load_experts).
  Status status = Status::kEmpty;
  std::string model_dir;
  // The last error of any command (one line: a load failure naming the path,
  // "α value 1.5 is outside [0, 1]", ...); kept until a later load succeeds.
  std::string message;
  uint64_t errors = 0;  // counts errors: a new error increments it
  // Inspection of the last thing loaded: a GPT-2's config and tensor table,
  // or for a superposition its experts' config and its own tensors.
  GPT2Config config;
  int64_t parameters = 0;  // a GPT-2's; a superposition's own (α and autoencoders)
  std::string tokenizer_dir;  // empty when none was found
  std::vector<TensorRow> tensors;

  std::optional<SuperpositionInfo> superposition;  // absent until one is loaded
  GenerationState generation;
  std::optional<SequenceAnalysis> analysis;  // absent until analyse_sequence() succeeds
  std::optional<JobProgress> job;            // absent when idle
  std::optional<TsneMap> tsne;               // absent until run_tsne()
  std::optional<NeuronMaps> neurons;         // absent until compute_neurons() succeeds
  std::optional<NeuronDetail> neuron_detail;
  std::optional<Trajectories> trajectories;  // absent until compute_trajectories() succeeds
  std::optional<EvalResults> eval;           // absent until run_eval()
  // The α schedule generate() uses; empty = none (the α in force throughout).
  std::vector<ScheduleSegment> alpha_schedule;
  std::optional<ImportStatus> import;  // absent until import_seed()
};

// Runs commands on its own thread, in the order they were called. The public
// functions are safe from any thread and never block on model work; errors
// land in the snapshot (message, errors) and the worker keeps running.
// snapshot() is safe from any thread.
//
// Generation runs one token per command: after each token the step puts
// itself at the back of the queue, so a command called while generating (α,
// autoencoder, stop) runs before the next token, and every change applies
// to the very next generated token. An evaluation does the same between its
// batches: the α, autoencoder, generation and analysis commands queued
// meanwhile run there (see run_eval), so it never holds a token back for
// longer than one batch.
class Worker {
 public:
  Worker();
  ~Worker();  // finishes the command in hand, drops the rest, joins
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  std::shared_ptr<const Snapshot> snapshot() const;
  // True while a command is queued or running (a paused generation is not).
  bool busy() const { return pending_.load() > 0; }

  // --- loading ---------------------------------------------------------
  // Reads and validates an HF GPT-2 directory (config, tensor table,
  // tokenizer) for inspection; loads no weights and keeps the superposition.
  void load_model(const std::filesystem::path& dir);
  // Loads a superposition directory and its experts, replacing the loaded
  // one (and ending its generation) on success; a failure keeps it.
  void load_superposition(const std::filesystem::path& dir, const LoadSettings& settings = {});
  // Superposes two experts without a checkpoint: 1D α = 0.5 at every layer,
  // no autoencoders. settings.base / fine are ignored.
  void load_experts(const std::filesystem::path& base, const std::filesystem::path& fine,
                    const LoadSettings& settings = {});
  // Converts a notebook checkpoint into a superposition folder (as
  // `superpose import-seed`, on the CPU in float32), loads it with
  // request.load, then trims the import folder to request.keep imports.
  // Progress is Snapshot::import and a cancellable job until "loading"; a
  // failure (unreadable or foreign file, shapes that do not fit the experts,
  // an unwritable folder, a failed load) sets import->failed and the message,
  // one line naming the file. A failed or cancelled import leaves the import
  // folder as it was and keeps the loaded superposition. Returns the
  // ImportStatus::id it will carry.
  uint64_t import_seed(const ImportRequest& request);
  // Ends the imports started so far before their next stage, even those not
  // started yet (an atomic ticket); one that has begun loading finishes.
  void cancel_import();

  // --- generation ------------------------------------------------------
  // Starts generating after `prompt` (ending any generation in progress).
  // Returns the GenerationState::id the generation will carry.
  uint64_t generate(const std::string& prompt, const GenerationSettings& settings);
  // Ends the generation started by the latest generate() before its next
  // token, even if it has not started yet (an atomic ticket, checked per token).
  void stop_generation();
  // Pauses the generation in progress before its next token.
  void pause_generation();
  // Continues a paused generation and pauses again after `pause_after` more
  // tokens (0 = run to the end); resume_generation(1) steps one token. On a
  // running generation it only moves the pause point. Without an active
  // generation it is an error.
  void resume_generation(int64_t pause_after = 0);
  // Recomputes the generated sequence's cached states under the α and
  // autoencoder switches in force now (the past otherwise keeps its α).
  void reprefill();

  // --- α (values in [0, 1]; overrides the learned α until reset_alpha) --
  void set_alpha_global(double value);                              // every layer and dimension
  void set_alpha_layer(int64_t layer, double value);               // one layer, every dimension
  void set_alpha_layer_dim(int64_t layer, int64_t dim, double value);  // 2D only
  // Every value at once, L or L·C row-major (undo/redo, spline drags).
  void set_alpha_all(std::vector<float> values);
  void reset_alpha();  // back to the learned α
  // α over positions for the next generate() (SuperposedGenerator's
  // AlphaSchedule): `from` strictly increasing and >= 0, values in [0, 1],
  // 1 or L values per segment. A bad schedule is an error and changes nothing.
  // The schedule takes precedence over the α in force where it applies.
  void set_alpha_schedule(std::vector<ScheduleSegment> segments);
  void clear_alpha_schedule();

  // --- autoencoders ----------------------------------------------------
  // Switches layer's autoencoder; switching on a layer without one is an error.
  void set_autoencoder(int64_t layer, bool on);

  // --- analysis --------------------------------------------------------
  // Per-layer numbers and the logit lens for the current sequence (prompt +
  // generated tokens so far) under the α and switches in force now.
  // position: the lens' position, < 0 = the last one.
  void analyse_sequence(int64_t position = -1);

  // Captures request.layers of the chosen models over request.data and runs
  // t-SNE on the worker's device, `chunk` iterations per queued command (α
  // and other commands interleave), publishing the embedding after each.
  // Returns the TsneMap::id it will carry.
  uint64_t run_tsne(const TsneRequest& request);
  void cancel_tsne();  // ends the latest run_tsne() before its next chunk
  // Stops generation, t-SNE, evaluation and import (the status bar's Cancel).
  void cancel_jobs();
  // Captures every residual state of the three models over request.data
  // and computes the layer × neuron maps; keeps the capture for neuron_detail().
  void compute_neurons(const NeuronRequest& request);
  // Top contexts and histogram of one neuron of the last neuron capture.
  void neuron_detail(const std::string& model, int64_t layer, int64_t neuron);
  // Captures the mean state of each document at every residual state of the
  // chosen models, fits the trajectory map, and projects the current
  // sequence's states (when there is one) on it.
  void compute_trajectories(const TrajectoryRequest& request);
  // Projects the current sequence's states under the α and autoencoder
  // switches in force now on the last map: one forward pass per model. Does
  // nothing without a map; clears the token trajectories without a sequence.
  void compute_token_trajectories();
  // Runs analysis evaluate() over request.data, publishing progress after
  // every batch. Between batches it runs the commands queued meanwhile that
  // may run alongside it (α, autoencoders, schedule, generation, sequence
  // analysis, token trajectories, t-SNE steps), in order, up to the first
  // that may not (another job): that one and those after it wait for the
  // end. A load or an import queued meanwhile ends the evaluation after its
  // current batch (EvalResults::cancelled), so the new model loads at once.
  // The evaluation keeps the autoencoder switches it started with;
  // the interleaved commands see and change the user's. α changes do not
  // touch it (evaluate() passes its α explicitly). Returns the
  // EvalResults::id it will carry.
  uint64_t run_eval(const EvalRequest& request);
  void cancel_eval();  // ends the latest run_eval() after its current batch

  // How a queued command meets an evaluation in progress.
  enum class Order {
    kInTurn,         // waits for it
    kAlongside,      // runs between its batches
    kReplacesModel,  // a load: the evaluation, of the model about to go, ends after its batch
  };

 private:
  struct Models;      // worker-thread state: models, tokenizer, generation
  struct Command {
    std::function<void()> run;
    Order order = Order::kInTurn;
  };
  void run();
  // Queues `command`; from the worker thread too (the generation step).
  void enqueue(std::function<void()> command, Order order = Order::kInTurn);
  // Queues a command whose exceptions become the snapshot's message.
  void enqueue_guarded(const char* name, std::function<void()> command, Order order = Order::kInTurn);
  // Queues an edit of the loaded superposition (α, autoencoder switches)
  // that also runs alongside a job; the superposition info is refreshed and
  // published after it.
  void enqueue_model_edit(const char* name, std::function<void(SuperposedModel&)> edit);
  // Worker thread, inside a long job: runs the `alongside` commands at the
  // front of the queue, at most as many as were queued on entry (those they
  // queue wait for the next call). False when the worker is stopping.
  bool run_alongside();
  bool model_replacement_queued();  // a kReplacesModel command waits
  // Publishes a copy of draft_ with the next version.
  void publish();
  void fail(const std::string& message);
  void step(uint64_t generation);
  void end_generation(const std::string& reason, bool cancelled);
  void refresh_superposition_info();
  void do_load_superposition(const std::filesystem::path& dir, const LoadSettings& settings, bool experts_only,
                             const std::filesystem::path& base, const std::filesystem::path& fine);
  void do_generate(uint64_t ticket, const std::string& prompt, const GenerationSettings& settings);
  void do_analyse(int64_t position);
  void do_tsne(uint64_t ticket, const TsneRequest& request);
  void tsne_step(uint64_t ticket);
  void do_neurons(const NeuronRequest& request);
  void do_trajectories(const TrajectoryRequest& request);
  void do_token_trajectories();
  void do_eval(uint64_t ticket, const EvalRequest& request);
  void do_import(uint64_t ticket, const ImportRequest& request);

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Command> commands_;
  bool stopping_ = false;
  std::shared_ptr<const Snapshot> snapshot_;
  uint64_t version_ = 0;  // under mutex_
  std::atomic<int> pending_{0};
  // generate() tickets: each call takes the next; stop_generation() ends
  // every generation whose ticket is <= stop_ticket_.
  std::atomic<uint64_t> generate_tickets_{0};
  std::atomic<uint64_t> stop_ticket_{0};
  std::atomic<uint64_t> tsne_tickets_{0};
  std::atomic<uint64_t> tsne_cancel_{0};
  std::atomic<uint64_t> eval_tickets_{0};
  std::atomic<uint64_t> eval_cancel_{0};
  std::atomic<uint64_t> import_tickets_{0};
  std::atomic<uint64_t> import_cancel_{0};

  // Worker-thread only.
  Snapshot draft_;
  std::unique_ptr<Models> models_;

  std::thread thread_;  // last: starts after everything above exists
};

}  // namespace superpose::studio
