// Evaluation of a superposition, its experts and weight-space merges on a
// labeled validation set: per-document sums on the device, domains at the end.
#include "analysis/eval.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>

#include <torch/torch.h>

#include "analysis/run_guard.h"
#include "model/errors.h"
#include "model/merge.h"

namespace superpose {
namespace {

struct ModelName {
  EvalModel model;
  const char* name;
};
constexpr ModelName kModelNames[] = {
    {EvalModel::kBase, "base"},
    {EvalModel::kFine, "fine"},
    {EvalModel::kSuperposition, "superposition"},
    {EvalModel::kSuperpositionA0, "superposition-a0"},
    {EvalModel::kSuperpositionA1, "superposition-a1"},
    {EvalModel::kLinear, "linear"},
    {EvalModel::kTaskArithmetic, "task-arithmetic"},
    {EvalModel::kAlphaHard, "alpha-hard"},
};

// Logits are turned into float64 log-probabilities this many elements at a
// time (128 MiB per temporary), so a batch of GPT-2-sized vocabularies never
// needs several (B·T, V) float64 copies at once.
constexpr int64_t kChunkElements = int64_t{1} << 24;

// Columns of the per-document statistics.
enum Stat : int64_t { kNll, kCorrect, kJsd, kCosine, kMse, kStatCount };

// Keeps one site's states on their device, by reference: forward passes
// build a new tensor for every state, so nothing overwrites them.
class StateKeeper : public ForwardObserver {
 public:
  StateKeeper(Site site, int64_t count) : site_(site), states_(static_cast<size_t>(count)) {}
  bool wants(Site site, int64_t /*index*/) const override { return site == site_; }
  void observe(Site /*site*/, int64_t index, const torch::Tensor& value) override {
    states_.at(static_cast<size_t>(index)) = value;
  }
  const std::vector<torch::Tensor>& states() const { return states_; }

 private:
  Site site_;
  std::vector<torch::Tensor> states_;
};

// One forward pass: (B,T) ids -> (B,T,V) logits, states 0..L into the keeper.
using Forward = std::function<torch::Tensor(const torch::Tensor& ids, StateKeeper& states)>;

// The target positions of a batch, flattened: x (B,T,...) -> (N,...).
struct Positions {
  torch::Tensor index;      // (N) into B·T
  torch::Tensor targets;    // (N)
  torch::Tensor documents;  // (N)
  torch::Tensor labels;     // (N)
  torch::Tensor select(const torch::Tensor& x) const { return x.flatten(0, 1).index_select(0, index); }
};

Positions target_positions(const Batch& batch) {
  Positions p;
  const auto targets = batch.targets.flatten();  // (B·T)
  p.index = targets.ne(Batch::kIgnoreIndex).nonzero().squeeze(1);
  p.targets = targets.index_select(0, p.index);
  const auto per_token = [&](const torch::Tensor& per_row) {
    return p.select(per_row.unsqueeze(1).expand(batch.targets.sizes()));
  };
  p.documents = per_token(batch.documents);
  p.labels = per_token(batch.labels);
  return p;
}

// One forward pass at the target positions: logits (N,V) in the model's
// dtype, states 0..L as (N,C) float64.
struct Outputs {
  torch::Tensor logits;
  std::vector<torch::Tensor> states;
};

Outputs run(const Forward& forward, const torch::Tensor& ids, const Positions& positions, Site site, int64_t L) {
  StateKeeper keeper(site, L + 1);
  Outputs out;
  out.logits = positions.select(forward(ids, keeper));
  for (const auto& state : keeper.states()) {
    TORCH_CHECK(state.defined(), "eval: a forward pass did not report every state");
    out.states.push_back(positions.select(state).to(torch::kFloat64));
  }
  return out;
}

// What a batch's expert passes give every model's metrics.
struct ExpertOutputs {
  Outputs base, fine;
  std::vector<torch::Tensor> label_expert;  // (N,C) per state: the base's for label 0, the fine's for label 1
};

// Per target position (N, kStatCount) except kMse: NLL, correct, JSD and
// cosine against the experts' average, in float64, chunk by chunk.
torch::Tensor token_output_stats(const torch::Tensor& logits, const ExpertOutputs& experts,
                                 const torch::Tensor& targets) {
  const int64_t N = logits.size(0), V = logits.size(1);
  // Large chunks suit a GPU's caching allocator; on the CPU, smaller ones
  // stay in cache and reuse the heap instead of fresh pages each time.
  const int64_t elements = logits.is_cuda() ? kChunkElements : kChunkElements / 16;
  const int64_t chunk = std::max<int64_t>(1, elements / std::max<int64_t>(V, 1));
  const double ln2 = std::log(2.0);
  auto stats = torch::zeros({N, kStatCount}, logits.options().dtype(torch::kFloat64));
  for (int64_t start = 0; start < N; start += chunk) {
    const int64_t n = std::min(chunk, N - start);
    const auto part = [&](const torch::Tensor& x) { return x.narrow(0, start, n); };
    const auto log_probs = [&](const torch::Tensor& x) { return torch::log_softmax(part(x).to(torch::kFloat64), 1); };
    const auto target = part(targets);                                                        // (n)
    const auto lm = log_probs(logits);                                                        // (n,V)
    const auto la = torch::logaddexp(log_probs(experts.base.logits), log_probs(experts.fine.logits)) - ln2;
    const auto lmix = torch::logaddexp(lm, la) - ln2;  // log of (p + a)/2
    const auto pm = lm.exp(), pa = la.exp();
    auto out = stats.narrow(0, start, n);
    out.select(1, kNll).copy_(-lm.gather(1, target.unsqueeze(1)).squeeze(1));
    out.select(1, kCorrect).copy_(part(logits).argmax(1).eq(target).to(torch::kFloat64));
    out.select(1, kJsd).copy_((0.5 * (pm * (lm - lmix)).sum(1) + 0.5 * (pa * (la - lmix)).sum(1)).clamp_min(0.0));
    out.select(1, kCosine).copy_((pm * pa).sum(1) / (pm.norm(2, 1) * pa.norm(2, 1)));
  }
  return stats;
}

// Mean over blocks of the squared error against the label's expert, per
// target position (N).
torch::Tensor token_mse(const std::vector<torch::Tensor>& states, const ExpertOutputs& experts) {
  const auto L = static_cast<int64_t>(states.size()) - 1;
  auto sum = torch::zeros({states[0].size(0)}, states[0].options());
  for (int64_t i = 1; i <= L; ++i) {
    const auto u = static_cast<size_t>(i);
    sum += (states[u] - experts.label_expert[u]).pow(2).mean(1);
  }
  return sum / static_cast<double>(L);
}

// ‖x_i − y_i‖₂ per target position and state: (N, L+1).
torch::Tensor l2_distances(const std::vector<torch::Tensor>& x, const std::vector<torch::Tensor>& y) {
  std::vector<torch::Tensor> columns;
  for (size_t i = 0; i < x.size(); ++i) columns.push_back((x[i] - y[i]).norm(2, 1));
  return torch::stack(columns, 1);
}

// A model under evaluation and its per-document sums.
struct Candidate {
  EvalModel which = EvalModel::kBase;
  Forward forward;  // empty for the experts, whose passes every batch runs anyway
  Site site = Site::kResidual;
  torch::Tensor stats;   // (D, kStatCount)
  torch::Tensor layers;  // (D, L+1, 2): Σ‖s − b‖, Σ‖s − f‖
};

void check_options(const EvalOptions& o, const LoadedModel& base, bool with_superposition) {
  if (o.seq_len < 1) throw Error("--seq-len", "must be at least 1, got " + std::to_string(o.seq_len));
  if (o.seq_len > base.config.n_positions) {
    throw Error("--seq-len", std::to_string(o.seq_len) + " exceeds the experts' context of " +
                                 std::to_string(base.config.n_positions) + " positions");
  }
  if (o.batch_size < 1) throw Error("--batch-size", "must be at least 1, got " + std::to_string(o.batch_size));
  if (o.max_documents < 0) {
    throw Error("--max-documents", "must be 0 (all) or more, got " + std::to_string(o.max_documents));
  }
  for (EvalModel model : o.models) {
    if (needs_superposition(model) && !with_superposition) {
      throw Error("--models", "'" + eval_model_name(model) + "' needs a superposition (--superposition DIR)");
    }
  }
}

Forward superposition_forward(SuperposedModel model, torch::Tensor alpha) {
  return [model, alpha](const torch::Tensor& ids, StateKeeper& states) mutable {
    return model->forward(ids, nullptr, &states, alpha);
  };
}

Forward gpt2_forward(GPT2 model) {
  return [model](const torch::Tensor& ids, StateKeeper& states) mutable { return model->forward(ids, nullptr, &states); };
}

std::vector<Candidate> candidates(const std::vector<EvalModel>& models, const LoadedModel& base,
                                  const LoadedModel& fine, SuperposedModel superposition) {
  std::vector<Candidate> out;
  for (EvalModel which : models) {
    Candidate c;
    c.which = which;
    MergeOptions merge;
    switch (which) {
      case EvalModel::kBase:
      case EvalModel::kFine:
        break;
      case EvalModel::kSuperposition:
      case EvalModel::kSuperpositionA0:
      case EvalModel::kSuperpositionA1: {
        c.site = Site::kState;
        const auto learned = superposition->learned_alpha();
        const auto alpha = which == EvalModel::kSuperposition     ? learned
                           : which == EvalModel::kSuperpositionA0 ? torch::zeros_like(learned)
                                                                  : torch::ones_like(learned);
        c.forward = superposition_forward(superposition, alpha);
        break;
      }
      case EvalModel::kLinear:
        merge.method = MergeMethod::kLinear;
        merge.t = 0.5;
        c.forward = gpt2_forward(merged_model(base, fine, merge));
        break;
      case EvalModel::kTaskArithmetic:
        merge.method = MergeMethod::kTaskArithmetic;
        merge.lambda = 0.5;
        c.forward = gpt2_forward(merged_model(base, fine, merge));
        break;
      case EvalModel::kAlphaHard:
        c.forward = gpt2_forward(merged_model(base, fine, alpha_hard_options(*superposition)));
        break;
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::string number(const char* pattern, double value) {
  if (std::isnan(value)) return "n/a";
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), pattern, value);
  return buffer;
}

nlohmann::json json_number(double value) { return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(); }

// Shortest text that reads back exactly; "nan", "inf", "-inf" otherwise.
std::string csv_number(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  return nlohmann::json(value).dump();
}

std::string csv_text(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

}  // namespace

std::string eval_model_name(EvalModel model) {
  for (const auto& entry : kModelNames) {
    if (entry.model == model) return entry.name;
  }
  TORCH_CHECK(false, "eval_model_name: unknown model");
}

bool needs_superposition(EvalModel model) {
  return model != EvalModel::kBase && model != EvalModel::kFine && model != EvalModel::kLinear &&
         model != EvalModel::kTaskArithmetic;
}

std::vector<EvalModel> default_eval_models(bool with_superposition) {
  std::vector<EvalModel> models;
  for (const auto& entry : kModelNames) {
    if (with_superposition || !needs_superposition(entry.model)) models.push_back(entry.model);
  }
  return models;
}

std::vector<EvalModel> parse_eval_models(const std::string& list, bool with_superposition) {
  std::string known;
  for (const auto& entry : kModelNames) known += (known.empty() ? "" : ", ") + std::string(entry.name);
  std::vector<EvalModel> models;
  size_t start = 0;
  for (;;) {
    const size_t comma = list.find(',', start);
    const std::string name = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const auto* entry = std::find_if(std::begin(kModelNames), std::end(kModelNames),
                                     [&](const ModelName& e) { return name == e.name; });
    if (entry == std::end(kModelNames)) {
      throw Error("--models", "unknown model '" + name + "'; expected a comma-separated list of " + known);
    }
    if (std::find(models.begin(), models.end(), entry->model) != models.end()) {
      throw Error("--models", "'" + name + "' is listed twice");
    }
    if (needs_superposition(entry->model) && !with_superposition) {
      throw Error("--models", "'" + name + "' needs a superposition (--superposition DIR)");
    }
    models.push_back(entry->model);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return models;
}

PerplexityInterval perplexity_interval(const std::vector<double>& nll_sums, const std::vector<double>& token_counts) {
  TORCH_CHECK(nll_sums.size() == token_counts.size(), "perplexity_interval: ", nll_sums.size(), " sums for ",
              token_counts.size(), " counts");
  double total_nll = 0.0, total_tokens = 0.0;
  int64_t n = 0;
  for (size_t d = 0; d < nll_sums.size(); ++d) {
    if (token_counts[d] <= 0) continue;
    total_nll += nll_sums[d];
    total_tokens += token_counts[d];
    ++n;
  }
  TORCH_CHECK(total_tokens > 0, "perplexity_interval: no tokens");
  const double m = total_nll / total_tokens;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (n < 2) return {std::exp(m), nan, nan};
  double squares = 0.0;
  for (size_t d = 0; d < nll_sums.size(); ++d) {
    if (token_counts[d] <= 0) continue;
    const double residual = nll_sums[d] - m * token_counts[d];
    squares += residual * residual;
  }
  const double se = std::sqrt(static_cast<double>(n) / static_cast<double>(n - 1) * squares /
                              (total_tokens * total_tokens));
  return {std::exp(m), std::exp(m - 1.96 * se), std::exp(m + 1.96 * se)};
}

EvalReport evaluate(const LoadedModel& base, const LoadedModel& fine, SuperposedModel superposition,
                    const std::vector<Document>& documents, const Tokenizer& tokenizer, const EvalOptions& options) {
  EvalOptions o = options;
  if (o.models.empty()) o.models = default_eval_models(!superposition.is_empty());
  check_options(o, base, !superposition.is_empty());
  check_same_architecture(base.config, base.files.dir, fine.config, fine.files.dir);
  if (!superposition.is_empty()) {
    TORCH_CHECK(superposition->base().get() == base.model.get() && superposition->fine().get() == fine.model.get(),
                "evaluate: the superposition must run over the experts given");
  }
  const std::vector<std::string> names = domain_names(documents);
  const std::vector<Document> selected = first_documents_per_label(documents, o.max_documents);
  const TokenDataset dataset = TokenDataset::build(selected, tokenizer, o.seq_len);
  if (dataset.size() == 0) {
    throw Error("eval", "no document has a target token (a document needs a token to predict after its first)");
  }
  if (tokenizer.vocab_size() > base.config.vocab_size) {
    throw Error("tokenizer", "has " + std::to_string(tokenizer.vocab_size()) + " tokens, more than the experts' " +
                                 std::to_string(base.config.vocab_size));
  }
  const int64_t L = base.config.n_layer;
  const int64_t D = static_cast<int64_t>(dataset.document_count());
  const torch::Device device = base.model->wte->weight.device();

  EvalModeGuard base_mode(*base.model.ptr()), fine_mode(*fine.model.ptr());
  std::optional<EvalModeGuard> superposition_mode;
  if (!superposition.is_empty()) superposition_mode.emplace(*superposition);
  std::vector<Candidate> models = candidates(o.models, base, fine, superposition);
  c10::InferenceMode inference;
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(device);
  for (auto& c : models) {
    c.stats = torch::zeros({D, kStatCount}, f64);
    c.layers = torch::zeros({D, L + 1, 2}, f64);
  }
  auto doc_tokens = torch::zeros({D}, f64);
  auto doc_base_fine = torch::zeros({D, L + 1}, f64);  // Σ‖b − f‖ per state

  const Forward base_forward = gpt2_forward(base.model), fine_forward = gpt2_forward(fine.model);
  const auto batches = static_cast<int64_t>((dataset.size() + static_cast<size_t>(o.batch_size) - 1) /
                                            static_cast<size_t>(o.batch_size));
  for (int64_t k = 0; k < batches; ++k) {
    const Batch batch = dataset.batch(dataset.range(static_cast<size_t>(k * o.batch_size),
                                                    static_cast<size_t>(o.batch_size))).to(device);
    const Positions positions = target_positions(batch);
    doc_tokens.index_add_(0, positions.documents, torch::ones({positions.index.size(0)}, f64));

    ExpertOutputs experts;
    experts.base = run(base_forward, batch.ids, positions, Site::kResidual, L);
    experts.fine = run(fine_forward, batch.ids, positions, Site::kResidual, L);
    const auto is_base = positions.labels.eq(0).unsqueeze(1);  // (N,1)
    for (int64_t i = 0; i <= L; ++i) {
      const auto u = static_cast<size_t>(i);
      experts.label_expert.push_back(torch::where(is_base, experts.base.states[u], experts.fine.states[u]));
    }
    doc_base_fine.index_add_(0, positions.documents, l2_distances(experts.base.states, experts.fine.states));

    for (auto& c : models) {
      Outputs own;
      const Outputs* out = &experts.base;
      if (c.which == EvalModel::kFine) out = &experts.fine;
      if (c.forward) {
        own = run(c.forward, batch.ids, positions, c.site, L);
        out = &own;
      }
      auto stats = token_output_stats(out->logits, experts, positions.targets);
      stats.select(1, kMse).copy_(token_mse(out->states, experts));
      c.stats.index_add_(0, positions.documents, stats);
      const auto layers = torch::stack({l2_distances(out->states, experts.base.states),
                                        l2_distances(out->states, experts.fine.states)},
                                       2);  // (N, L+1, 2)
      c.layers.index_add_(0, positions.documents, layers);
    }
    if (o.progress && !o.progress(k + 1, batches)) throw Error("eval", "cancelled");
  }

  // Per domain: the documents of that label with at least one target.
  const auto tokens = doc_tokens.cpu();
  const auto base_fine = doc_base_fine.cpu();
  const auto token_count = tokens.accessor<double, 1>();
  std::vector<std::vector<int64_t>> domain_documents(2);
  for (int64_t d = 0; d < D; ++d) {
    if (token_count[d] > 0) domain_documents[static_cast<size_t>(selected[static_cast<size_t>(d)].label)].push_back(d);
  }
  EvalReport report;
  report.seq_len = o.seq_len;
  for (size_t label = 0; label < 2; ++label) {
    if (domain_documents[label].empty()) report.missing_domains.push_back(names[label]);
  }
  for (auto& c : models) {
    const bool causal = c.site != Site::kState || superposition->causal();
    report.causal = report.causal && causal;
    const auto stats = c.stats.cpu();
    const auto layers = c.layers.cpu();
    for (size_t label = 0; label < 2; ++label) {
      const auto& docs = domain_documents[label];
      if (docs.empty()) continue;
      const auto index = torch::tensor(docs, torch::kLong);
      const auto n_d = tokens.index_select(0, index);
      const double total = n_d.sum().item<double>();
      const auto sums = stats.index_select(0, index).sum(0);  // (kStatCount)
      const auto nll = stats.index_select(0, index).select(1, kNll).contiguous();
      const auto interval = perplexity_interval(
          std::vector<double>(nll.data_ptr<double>(), nll.data_ptr<double>() + nll.numel()),
          std::vector<double>(n_d.data_ptr<double>(), n_d.data_ptr<double>() + n_d.numel()));
      EvalRow row;
      row.model = eval_model_name(c.which);
      row.domain = names[label];
      row.ppl = interval.ppl;
      row.ppl_lo = interval.lo;
      row.ppl_hi = interval.hi;
      row.acc = sums[kCorrect].item<double>() / total;
      row.jsd = sums[kJsd].item<double>() / total;
      row.cosine = sums[kCosine].item<double>() / total;
      row.mse = sums[kMse].item<double>() / total;
      row.tokens = static_cast<int64_t>(total);
      row.documents = static_cast<int64_t>(docs.size());
      row.causal = causal;
      report.rows.push_back(row);
      const auto layer_sums = layers.index_select(0, index).sum(0) / total;      // (L+1, 2)
      const auto base_fine_sums = base_fine.index_select(0, index).sum(0) / total;  // (L+1)
      for (int64_t i = 0; i <= L; ++i) {
        report.layers.push_back(EvalLayerRow{row.model, row.domain, i, layer_sums[i][0].item<double>(),
                                             layer_sums[i][1].item<double>(), base_fine_sums[i].item<double>(),
                                             causal});
      }
    }
  }
  return report;
}

nlohmann::json eval_json(const EvalReport& report, const std::string& data) {
  auto rows = nlohmann::json::array();
  for (const auto& r : report.rows) {
    rows.push_back({{"model", r.model},
                    {"domain", r.domain},
                    {"ppl", json_number(r.ppl)},
                    {"ppl_lo", json_number(r.ppl_lo)},
                    {"ppl_hi", json_number(r.ppl_hi)},
                    {"acc", json_number(r.acc)},
                    {"jsd", json_number(r.jsd)},
                    {"cosine", json_number(r.cosine)},
                    {"mse", json_number(r.mse)},
                    {"tokens", r.tokens},
                    {"documents", r.documents}});
  }
  auto layers = nlohmann::json::array();
  for (const auto& l : report.layers) {
    layers.push_back({{"model", l.model},
                      {"domain", l.domain},
                      {"layer", l.layer},
                      {"l2_base", json_number(l.l2_base)},
                      {"l2_fine", json_number(l.l2_fine)},
                      {"l2_base_fine", json_number(l.l2_base_fine)}});
  }
  return {{"rows", rows}, {"layers", layers}, {"causal", report.causal}, {"data", data}, {"seq_len", report.seq_len}};
}

std::string eval_markdown(const EvalReport& report, const std::string& data) {
  std::string out = "Evaluation of " + data + " (windows of " + std::to_string(report.seq_len) + " tokens)\n\n";
  if (!report.causal) {
    out += "Note: the superposition is non-causal (centered convolution): its predictions read the next token, "
           "so its scores are optimistic and not comparable to causal models'.\n\n";
  }
  out += "| model | domain | ppl [95% CI] | acc | JSD | cosine | MSE |\n";
  out += "|---|---|---|---|---|---|---|\n";
  for (const auto& r : report.rows) {
    const std::string interval =
        std::isnan(r.ppl_lo) ? "n/a" : "[" + number("%.2f", r.ppl_lo) + ", " + number("%.2f", r.ppl_hi) + "]";
    out += "| " + r.model + " | " + r.domain + " | " + number("%.2f", r.ppl) + " " + interval + " | " +
           number("%.4f", r.acc) + " | " + number("%.4g", r.jsd) + " | " + number("%.4f", r.cosine) + " | " +
           number("%.4g", r.mse) + " |\n";
  }
  out += "\nPer-layer mean L2 distances of hidden states (layer 0 = embeddings)\n\n";
  out += "| model | domain | layer | L2 to base | L2 to fine | L2 base–fine |\n";
  out += "|---|---|---|---|---|---|\n";
  for (const auto& l : report.layers) {
    out += "| " + l.model + " | " + l.domain + " | " + std::to_string(l.layer) + " | " + number("%.4g", l.l2_base) +
           " | " + number("%.4g", l.l2_fine) + " | " + number("%.4g", l.l2_base_fine) + " |\n";
  }
  return out;
}

std::string eval_rows_csv(const EvalReport& report) {
  std::string out = "model,domain,ppl,ppl_lo,ppl_hi,acc,jsd,cosine,mse,tokens,documents,causal\n";
  for (const auto& r : report.rows) {
    out += csv_text(r.model) + "," + csv_text(r.domain);
    for (double v : {r.ppl, r.ppl_lo, r.ppl_hi, r.acc, r.jsd, r.cosine, r.mse}) out += "," + csv_number(v);
    out += "," + std::to_string(r.tokens) + "," + std::to_string(r.documents) + "," + (r.causal ? "true" : "false") +
           "\n";
  }
  return out;
}

std::string eval_layers_csv(const EvalReport& report) {
  std::string out = "model,domain,layer,l2_base,l2_fine,l2_base_fine,causal\n";
  for (const auto& l : report.layers) {
    out += csv_text(l.model) + "," + csv_text(l.domain) + "," + std::to_string(l.layer);
    for (double v : {l.l2_base, l.l2_fine, l.l2_base_fine}) out += "," + csv_number(v);
    out += std::string(",") + (l.causal ? "true" : "false") + "\n";
  }
  return out;
}

}  // namespace superpose
