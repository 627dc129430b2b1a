// Evaluation of a superposition against its experts and weight-space merges
// (SPEC §6) over a whole labeled validation set, per domain.
//
// Every model runs on the same windows (TokenDataset: each document preceded
// by EOS, cut into windows of seq_len predictions, every token a target
// exactly once), batched, without gradients, on the experts' device. Per
// (model, domain) — the domain of a token is its document's label:
//   ppl       exp(ΣNLL / target tokens), NLL = −log p_model(target), natural log;
//   ppl_lo/hi a 95% confidence interval for ppl (perplexity_interval below);
//   acc       share of targets that are the argmax of the logits;
//   jsd       mean over target positions of the Jensen-Shannon divergence
//             (natural log, in [0, ln 2]) between the model's next-token
//             distribution p and the experts' average a = (p_base + p_fine)/2:
//             ½·KL(p‖m) + ½·KL(a‖m), m = (p + a)/2;
//   cosine    mean over target positions of p·a / (‖p‖₂‖a‖₂);
//   mse       hidden-state MSE against the label's expert e (base for label 0,
//             fine for label 1): the mean over blocks l = 0..L-1 of
//             mean over target positions and dimensions of (s_{l+1} − e_{l+1})²,
//             where e_i is the expert's hidden state i (HF convention, so
//             e_L includes ln_f) and s_i is the model's: hidden state i for a
//             single GPT-2 (base, fine, merges), state.i for a superposition
//             (what block i−1 passes on, after its autoencoder, before ln_f —
//             the state its training pulls towards e_i, SPEC §5);
//   tokens    target tokens; documents: documents with at least one target.
// Per (model, domain, layer i = 0..L), means over target positions of
// ‖s_i − b_i‖₂, ‖s_i − f_i‖₂ and ‖b_i − f_i‖₂, with b, f the experts' hidden
// states and s the model's states as above (i = 0: embeddings, for a
// superposition the blended embeddings state.0).
//
// Metrics are computed from the logits and states in float64, whatever the
// models' dtype. Rows exist only for domains with at least one target token
// (a file with one label gives one domain).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/dataset.h"
#include "model/model_dir.h"
#include "model/superposed.h"
#include "model/tokenizer.h"

namespace superpose {

// The models an evaluation compares, in report order.
enum class EvalModel {
  kBase,              // "base": the base expert
  kFine,              // "fine": the fine expert
  kSuperposition,     // "superposition": the learned α, autoencoders as switched in the model
  kSuperpositionA0,   // "superposition-a0": α = 0 everywhere, same autoencoders
  kSuperpositionA1,   // "superposition-a1": α = 1 everywhere, same autoencoders
  kLinear,            // "linear": weight merge (1-t)θ_b + tθ_f, t = 0.5
  kTaskArithmetic,    // "task-arithmetic": θ_b + λ(θ_f − θ_b), λ = 0.5
  kAlphaHard,         // "alpha-hard": per-block merge with the superposition's learned α (alpha_hard_options)
};

std::string eval_model_name(EvalModel model);
// True for the models that need a superposition (superposition*, alpha-hard).
bool needs_superposition(EvalModel model);
// Every model, or those that need no superposition, in report order.
std::vector<EvalModel> default_eval_models(bool with_superposition);
// A comma-separated list of names ("base,fine,linear"). Throws
// Error("--models", ...) for an unknown or repeated name, an empty list, or a
// superposition model when with_superposition is false.
std::vector<EvalModel> parse_eval_models(const std::string& list, bool with_superposition);

// Called after each batch; returns false to cancel (evaluate then throws
// Error("eval", "cancelled")).
using EvalProgress = std::function<bool(int64_t batches_done, int64_t batches_total)>;

struct EvalOptions {
  int64_t seq_len = 128;       // predictions per window, 1..n_positions
  int64_t batch_size = 16;     // windows per forward pass, >= 1
  int64_t max_documents = 0;   // per domain, the first ones in file order; 0 = all
  std::vector<EvalModel> models;  // empty: default_eval_models()
  EvalProgress progress;
};

// One (model, domain). ppl_lo / ppl_hi are NaN when the domain has one document.
// causal is false for the rows of a non-causal superposition (its scores read
// the next token).
struct EvalRow {
  std::string model, domain;
  double ppl = 0, ppl_lo = 0, ppl_hi = 0, acc = 0, jsd = 0, cosine = 0, mse = 0;
  int64_t tokens = 0, documents = 0;
  bool causal = true;
};

// One (model, domain, layer): mean L2 distances of hidden states.
struct EvalLayerRow {
  std::string model, domain;
  int64_t layer = 0;  // hidden-state index 0..L
  double l2_base = 0, l2_fine = 0, l2_base_fine = 0;
  bool causal = true;  // as EvalRow::causal
};

struct EvalReport {
  std::vector<EvalRow> rows;          // by model (in EvalOptions order), then domain (label 0, 1)
  std::vector<EvalLayerRow> layers;   // by model, domain, layer
  bool causal = true;                 // false when a non-causal superposition was evaluated
  int64_t seq_len = 0;
  std::vector<std::string> missing_domains;  // names of labels without any target token
};

// Perplexity with a 95% confidence interval from per-document NLL sums L_d
// and target counts N_d. The tokens are clustered by document, so the
// interval uses the ratio estimator with a document-clustered standard error
// (delta method): with n documents,
//   m = ΣL_d / ΣN_d,  SE² = n/(n−1) · Σ_d (L_d − m·N_d)² / (ΣN_d)²,
//   ppl = exp(m),  [lo, hi] = exp(m ∓ 1.96·SE).
// With one document the interval is undefined: lo = hi = NaN. Documents with
// N_d = 0 are not counted. Expects equal lengths and ΣN_d > 0.
struct PerplexityInterval {
  double ppl, lo, hi;
};
PerplexityInterval perplexity_interval(const std::vector<double>& nll_sums, const std::vector<double>& token_counts);

// The experts (and, for the superposition rows and alpha-hard, the
// superposition over exactly these two models; nullptr otherwise) on one
// device and dtype. `documents` is the labeled set, `tokenizer` the experts'.
// Throws Error("--seq-len", ...) for seq_len < 1 or beyond the experts'
// context, Error("--batch-size"/"--max-documents", ...) for values < 1 / < 0,
// Error("--models", ...) for a superposition model without a superposition,
// Error as check_same_architecture does for experts of different shapes, and
// Error("eval", "no document has a target token ...") when nothing is left to
// evaluate. Leaves the models as it found them.
EvalReport evaluate(const LoadedModel& base, const LoadedModel& fine, SuperposedModel superposition,
                    const std::vector<Document>& documents, const Tokenizer& tokenizer, const EvalOptions& options);

// ---- Output ----

// {"rows": [{"model", "domain", "ppl", "ppl_lo", "ppl_hi", "acc", "jsd",
// "cosine", "mse", "tokens", "documents"}...], "layers": [{"model", "domain",
// "layer", "l2_base", "l2_fine", "l2_base_fine"}...], "causal": bool,
// "data": data, "seq_len": N}; NaN and infinite numbers are null.
nlohmann::json eval_json(const EvalReport& report, const std::string& data);
// Two Markdown tables: model, domain, ppl [95% CI], acc, JSD, cosine, MSE;
// then model, domain, layer and the three L2 distances. A non-causal
// superposition gets a note line; an undefined interval reads "n/a".
std::string eval_markdown(const EvalReport& report, const std::string& data);
// CSV (RFC 4180, header line first; NaN as "nan"): the rows, and the layer
// table, each with a last column "causal" (true / false, as EvalRow::causal).
std::string eval_rows_csv(const EvalReport& report);
std::string eval_layers_csv(const EvalReport& report);

}  // namespace superpose
