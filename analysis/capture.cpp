// Activation capture: plans rows and windows from token counts, runs each
// model over the same batches, and copies the wanted states into buffers
// allocated once at their final size.
#include "analysis/capture.h"

#include <algorithm>
#include <optional>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "analysis/run_guard.h"
#include "model/errors.h"
#include "model/observer.h"
#include "model/safetensors.h"

namespace superpose {
namespace {

constexpr const char* kFormat = "superpose-capture";

// One forward window: tokens [begin, begin+length) of a document's sequence
// (EOS prefix included), and which of its positions become which rows.
struct Window {
  int64_t document = 0;  // captured document index
  int64_t begin = 0, length = 0;
  std::vector<int64_t> source;  // positions within the window
  std::vector<int64_t> row;     // destination rows (mean: the document's row)
};

struct Plan {
  std::vector<Window> windows;
  std::vector<int64_t> labels, documents, positions, token_ids;  // per row
  std::vector<std::vector<int64_t>> sequences;                   // per captured document, EOS included
  std::vector<int64_t> source_documents;                         // captured -> input document index
  std::vector<int64_t> mean_counts;                              // mean mode: tokens per row
  int64_t prefix = 0;                                            // 1 when sequences start with EOS
};

Plan plan_capture(const std::vector<Document>& documents, const Tokenizer& tokenizer, const CaptureOptions& o) {
  Plan plan;
  const auto eos = tokenizer.eos_id();
  plan.prefix = eos ? 1 : 0;
  const int64_t S = o.seq_len;
  for (size_t input = 0; input < documents.size(); ++input) {
    std::vector<int64_t> ids = document_sequence(documents[input], tokenizer, input);
    const int64_t n = static_cast<int64_t>(ids.size()) - plan.prefix;  // text tokens
    const auto d = static_cast<int64_t>(plan.sequences.size());
    const int64_t label = documents[input].label;
    const auto add_row = [&](int64_t position) {
      plan.labels.push_back(label);
      plan.documents.push_back(d);
      plan.positions.push_back(position);
      plan.token_ids.push_back(position < 0 ? -1 : ids[static_cast<size_t>(position + plan.prefix)]);
      return static_cast<int64_t>(plan.labels.size()) - 1;
    };
    const auto& mode = o.positions.mode;
    if (n < 1) continue;
    if (mode == CapturePositions::kAll || mode == CapturePositions::kMean) {
      const int64_t mean_row = mode == CapturePositions::kMean ? add_row(-1) : -1;
      if (mean_row >= 0) plan.mean_counts.push_back(n);
      const int64_t total = static_cast<int64_t>(ids.size());
      for (int64_t begin = 0; begin < total; begin += S) {
        Window w{d, begin, std::min(S, total - begin), {}, {}};
        for (int64_t t = 0; t < w.length; ++t) {
          const int64_t position = begin + t - plan.prefix;
          if (position < 0) continue;
          w.source.push_back(t);
          w.row.push_back(mean_row >= 0 ? mean_row : add_row(position));
        }
        if (!w.source.empty()) plan.windows.push_back(std::move(w));
      }
    } else {
      const int64_t position = mode == CapturePositions::kFirst  ? 0
                               : mode == CapturePositions::kLast ? n - 1
                                                                 : o.positions.index;
      if (position >= n) continue;
      // The seq_len tokens that end at the chosen one: the most context a window allows.
      const int64_t end = position + plan.prefix + 1;
      const int64_t begin = std::max<int64_t>(0, end - S);
      plan.windows.push_back(Window{d, begin, end - begin, {end - begin - 1}, {add_row(position)}});
    }
    plan.sequences.push_back(std::move(ids));
    plan.source_documents.push_back(static_cast<int64_t>(input));
  }
  return plan;
}

// One tensor the capture fills: the site and index it observes and its buffer.
struct Target {
  std::string name;
  Site site;
  int64_t index;
  int64_t width;
  torch::Tensor buffer;  // (N,width) float32 CPU; mean mode: (N,width) float64 sums on the device
};

// Copies the wanted states of one batch into their buffers.
class CaptureObserver : public ForwardObserver {
 public:
  CaptureObserver(std::vector<Target*> targets, torch::Tensor source, torch::Tensor rows, bool mean)
      : targets_(std::move(targets)), source_(std::move(source)), rows_(std::move(rows)), mean_(mean) {}

  bool wants(Site site, int64_t index) const override { return find(site, index) != nullptr; }

  // value (B,T,X): the rows at source_ (flat B·T indices) go to rows_.
  void observe(Site site, int64_t index, const torch::Tensor& value) override {
    Target* target = find(site, index);
    if (target == nullptr) return;
    const auto flat = value.flatten(0, 1);  // (B·T,X)
    const auto picked = flat.index_select(0, source_.to(flat.device()));
    if (mean_) {
      target->buffer.index_add_(0, rows_.to(target->buffer.device()), picked.to(torch::kFloat64));
    } else {
      target->buffer.index_copy_(0, rows_, picked.to(torch::kCPU, torch::kFloat32));
    }
  }

 private:
  Target* find(Site site, int64_t index) const {
    for (Target* t : targets_) {
      if (t->site == site && t->index == index) return t;
    }
    return nullptr;
  }
  std::vector<Target*> targets_;
  torch::Tensor source_, rows_;
  bool mean_;
};

void check_options(const CaptureOptions& o, const GPT2Config& config, bool with_superposition) {
  const int64_t L = config.n_layer;
  if (o.seq_len < 1 || o.seq_len > config.n_positions) {
    throw Error("--seq-len", "must be in 1.." + std::to_string(config.n_positions) + ", got " +
                                 std::to_string(o.seq_len));
  }
  if (o.batch_size < 1) throw Error("--batch-size", "must be at least 1, got " + std::to_string(o.batch_size));
  if (o.max_documents < 0) {
    throw Error("--max-documents", "must be 0 (all) or more, got " + std::to_string(o.max_documents));
  }
  if (o.positions.mode == CapturePositions::kIndex && o.positions.index < 0) {
    throw Error("--positions", "a token index must be 0 or more, got " + std::to_string(o.positions.index));
  }
  for (int64_t layer : o.residual_layers) {
    if (layer < 0 || layer > L) {
      throw Error("--layers", "state " + std::to_string(layer) + " does not exist: the model has states 0.." +
                                  std::to_string(L));
    }
  }
  for (int64_t layer : o.mlp_layers) {
    if (layer < 0 || layer >= L) {
      throw Error("--mlp-layers", "block " + std::to_string(layer) + " does not exist: the model has blocks 0.." +
                                      std::to_string(L - 1));
    }
  }
  if (!o.residual && o.mlp_layers.empty()) throw Error("--mlp-layers", "nothing to capture: no state and no MLP layer");
  for (CaptureModel model : o.models) {
    if (model == CaptureModel::kSuperposition && !with_superposition) {
      throw Error("--models", "'superposition' needs a superposition (--superposition DIR)");
    }
  }
}

std::vector<int64_t> sorted_unique(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

torch::Tensor long_tensor(const std::vector<int64_t>& v) {
  return torch::tensor(v, torch::kInt64).reshape({static_cast<int64_t>(v.size())});
}

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  const auto c = t.to(torch::kCPU, torch::kInt64).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

nlohmann::json json_or(const std::map<std::string, std::string>& metadata, const std::string& key,
                       const std::filesystem::path& path) {
  const auto it = metadata.find(key);
  if (it == metadata.end()) throw Error(path.string(), "capture metadata has no '" + key + "'");
  try {
    return nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception&) {
    throw Error(path.string(), "capture metadata '" + key + "' is not valid JSON");
  }
}

}  // namespace

std::string capture_model_name(CaptureModel model) {
  switch (model) {
    case CaptureModel::kBase: return "base";
    case CaptureModel::kFine: return "fine";
    case CaptureModel::kSuperposition: return "superposition";
  }
  return "?";
}

std::vector<CaptureModel> parse_capture_models(const std::string& list, bool with_superposition,
                                               const std::string& option) {
  std::vector<CaptureModel> models;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::optional<CaptureModel> model;
    for (CaptureModel m : {CaptureModel::kBase, CaptureModel::kFine, CaptureModel::kSuperposition}) {
      if (capture_model_name(m) == item) model = m;
    }
    if (!model) throw Error(option, "'" + item + "' is not one of base, fine, superposition");
    if (std::find(models.begin(), models.end(), *model) != models.end()) {
      throw Error(option, "'" + item + "' is named twice");
    }
    if (*model == CaptureModel::kSuperposition && !with_superposition) {
      throw Error(option, "'superposition' needs a superposition (--superposition DIR)");
    }
    models.push_back(*model);
  }
  if (models.empty()) throw Error(option, "names no model");
  return models;
}

std::string PositionSelection::name() const {
  switch (mode) {
    case CapturePositions::kAll: return "all";
    case CapturePositions::kMean: return "mean";
    case CapturePositions::kFirst: return "first";
    case CapturePositions::kLast: return "last";
    case CapturePositions::kIndex: return std::to_string(index);
  }
  return "?";
}

PositionSelection parse_positions(const std::string& text, const std::string& option) {
  if (text == "all") return {CapturePositions::kAll, 0};
  if (text == "mean") return {CapturePositions::kMean, 0};
  if (text == "first") return {CapturePositions::kFirst, 0};
  if (text == "last") return {CapturePositions::kLast, 0};
  const bool digits = !text.empty() && text.size() <= 9 &&
                      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) throw Error(option, "'" + text + "' is not one of all, mean, first, last or a token index");
  return {CapturePositions::kIndex, std::stoll(text)};
}

std::vector<int64_t> Capture::document(int64_t d) const {
  const auto starts = document_starts.accessor<int64_t, 1>();
  TORCH_CHECK(d >= 0 && d + 1 < document_starts.size(0), "capture: document ", d, " out of range");
  const auto tokens = document_tokens.narrow(0, starts[d], starts[d + 1] - starts[d]).contiguous();
  return std::vector<int64_t>(tokens.data_ptr<int64_t>(), tokens.data_ptr<int64_t>() + tokens.numel());
}

const torch::Tensor& Capture::tensor(const std::string& name) const {
  const auto it = tensors.find(name);
  if (it == tensors.end()) {
    std::string names;
    for (const auto& [held, value] : tensors) names += (names.empty() ? "" : ", ") + held;
    throw Error(name, "not in the capture (it holds " + names + ")");
  }
  return it->second;
}

std::string Capture::residual_name(const std::string& model, int64_t layer) {
  return model + ".residual." + std::to_string(layer);
}

Capture capture_states(const LoadedModel& base, const LoadedModel& fine, SuperposedModel superposition,
                       const std::vector<Document>& documents, const Tokenizer& tokenizer,
                       const CaptureOptions& options) {
  CaptureOptions o = options;
  if (o.seq_len == 0) o.seq_len = std::min<int64_t>(128, base.config.n_positions);
  const bool with_superposition = !superposition.is_empty();
  if (o.models.empty()) {
    o.models = {CaptureModel::kBase, CaptureModel::kFine};
    if (with_superposition) o.models.push_back(CaptureModel::kSuperposition);
  }
  check_options(o, base.config, with_superposition);
  check_experts_match(base.config, fine.config, base.files.dir.string(), fine.files.dir.string());
  const int64_t L = base.config.n_layer, C = base.config.n_embd, inner = base.config.mlp_width();
  std::vector<int64_t> residual_layers;
  if (o.residual) {
    if (o.residual_layers.empty()) {
      for (int64_t i = 0; i <= L; ++i) residual_layers.push_back(i);
    } else {
      residual_layers = sorted_unique(o.residual_layers);
    }
  }
  const std::vector<int64_t> mlp_layers = sorted_unique(o.mlp_layers);

  const Plan plan = plan_capture(first_documents_per_label(documents, o.max_documents), tokenizer, o);
  const auto N = static_cast<int64_t>(plan.labels.size());
  if (N == 0) {
    throw Error("--positions", "no document has text token " + o.positions.name() + " (documents are too short)");
  }
  const bool mean = o.positions.mode == CapturePositions::kMean;
  const torch::Device device = base.model->wte->weight.device();

  Capture out;
  out.positions_mode = o.positions;
  out.residual_layers = residual_layers;
  out.mlp_layers = mlp_layers;
  out.causal = !with_superposition || superposition->causal();
  out.n_layer = L;
  out.seq_len = o.seq_len;
  {
    std::vector<Document> selected = first_documents_per_label(documents, o.max_documents);
    out.domains = domain_names(selected);
    for (int64_t input : plan.source_documents) out.sources.push_back(selected[static_cast<size_t>(input)].source);
  }
  std::vector<int64_t> tokens, starts{0};
  for (const auto& sequence : plan.sequences) {
    tokens.insert(tokens.end(), sequence.begin() + plan.prefix, sequence.end());
    starts.push_back(static_cast<int64_t>(tokens.size()));
  }
  out.document_tokens = long_tensor(tokens);
  out.document_starts = long_tensor(starts);
  out.labels = long_tensor(plan.labels);
  out.documents = long_tensor(plan.documents);
  out.positions = long_tensor(plan.positions);
  out.token_ids = long_tensor(plan.token_ids);

  // The buffers, allocated once at their final size.
  const auto make_targets = [&](CaptureModel model) {
    std::vector<Target> targets;
    const std::string name = capture_model_name(model);
    const bool sp = model == CaptureModel::kSuperposition;
    for (int64_t i : residual_layers) {
      targets.push_back({Capture::residual_name(name, i), sp ? Site::kState : Site::kResidual, i, C, {}});
    }
    for (int64_t l : mlp_layers) {
      if (sp) {
        targets.push_back({name + ".mlp_base." + std::to_string(l), Site::kBaseMlpActivation, l, inner, {}});
        targets.push_back({name + ".mlp_fine." + std::to_string(l), Site::kFineMlpActivation, l, inner, {}});
      } else {
        targets.push_back({name + ".mlp." + std::to_string(l), Site::kMlpActivation, l, inner, {}});
      }
    }
    for (auto& t : targets) {
      t.buffer = mean ? torch::zeros({N, t.width}, torch::TensorOptions().dtype(torch::kFloat64).device(device))
                      : torch::empty({N, t.width}, torch::kFloat32);
    }
    return targets;
  };
  std::vector<std::vector<Target>> per_model;
  for (CaptureModel model : o.models) {
    out.models.push_back(capture_model_name(model));
    per_model.push_back(make_targets(model));
  }

  EvalModeGuard base_mode(*base.model.ptr()), fine_mode(*fine.model.ptr());
  std::optional<EvalModeGuard> superposition_mode;
  if (with_superposition) superposition_mode.emplace(*superposition);
  GPT2 base_model = base.model, fine_model = fine.model;  // handles: forward() is not const
  c10::InferenceMode inference;
  const int64_t pad = tokenizer.eos_id().value_or(0);
  const auto W = static_cast<int64_t>(plan.windows.size());
  const int64_t batches = (W + o.batch_size - 1) / o.batch_size;
  for (int64_t k = 0; k < batches; ++k) {
    const int64_t first = k * o.batch_size, count = std::min(o.batch_size, W - first);
    int64_t T = 0;
    for (int64_t w = first; w < first + count; ++w) T = std::max(T, plan.windows[static_cast<size_t>(w)].length);
    // Right padding: a causal model's real positions never read it.
    auto ids = torch::full({count, T}, pad, torch::kInt64);
    std::vector<int64_t> source, rows;
    for (int64_t b = 0; b < count; ++b) {
      const Window& w = plan.windows[static_cast<size_t>(first + b)];
      const auto& sequence = plan.sequences[static_cast<size_t>(w.document)];
      ids[b].narrow(0, 0, w.length).copy_(
          torch::tensor(std::vector<int64_t>(sequence.begin() + w.begin, sequence.begin() + w.begin + w.length)));
      for (size_t j = 0; j < w.source.size(); ++j) {
        source.push_back(b * T + w.source[j]);
        rows.push_back(w.row[j]);
      }
    }
    ids = ids.to(device);
    const auto source_t = long_tensor(source), rows_t = long_tensor(rows);
    for (size_t m = 0; m < o.models.size(); ++m) {
      std::vector<Target*> targets;
      for (auto& t : per_model[m]) targets.push_back(&t);
      CaptureObserver observer(targets, source_t, rows_t, mean);
      switch (o.models[m]) {
        case CaptureModel::kBase: base_model->forward(ids, nullptr, &observer); break;
        case CaptureModel::kFine: fine_model->forward(ids, nullptr, &observer); break;
        case CaptureModel::kSuperposition: superposition->forward(ids, nullptr, &observer); break;
      }
    }
    if (o.progress && !o.progress(k + 1, batches)) throw Error("capture", "cancelled");
  }
  const auto counts = mean ? long_tensor(plan.mean_counts).to(torch::kFloat64).unsqueeze(1) : torch::Tensor();
  for (auto& targets : per_model) {
    for (auto& t : targets) {
      out.tensors[t.name] = mean ? (t.buffer.cpu() / counts).to(torch::kFloat32) : t.buffer;
      t.buffer = torch::Tensor();
    }
  }
  return out;
}

void save_capture(const std::filesystem::path& path, const Capture& capture) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  // Row metadata first, then the states in model order, layer order.
  tensors.emplace_back("labels", capture.labels);
  tensors.emplace_back("documents", capture.documents);
  tensors.emplace_back("positions", capture.positions);
  tensors.emplace_back("token_ids", capture.token_ids);
  tensors.emplace_back("document_tokens", capture.document_tokens);
  tensors.emplace_back("document_starts", capture.document_starts);
  for (const auto& model : capture.models) {
    for (const auto& [name, value] : capture.tensors) {
      if (name.compare(0, model.size() + 1, model + ".") == 0) tensors.emplace_back(name, value);
    }
  }
  const nlohmann::json sources = capture.sources;
  const std::map<std::string, std::string> metadata{
      {"format", kFormat},
      {"version", "1"},
      {"models", nlohmann::json(capture.models).dump()},
      {"residual_layers", nlohmann::json(capture.residual_layers).dump()},
      {"mlp_layers", nlohmann::json(capture.mlp_layers).dump()},
      {"positions", capture.positions_mode.name()},
      {"domains", nlohmann::json(capture.domains).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)},
      {"sources", sources.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)},
      {"causal", capture.causal ? "true" : "false"},
      {"n_layer", std::to_string(capture.n_layer)},
      {"seq_len", std::to_string(capture.seq_len)},
      {"data", capture.data},
  };
  save_safetensors(path, tensors, metadata);
}

Capture load_capture(const std::filesystem::path& path) {
  const SafetensorsFile file(path);
  const auto& metadata = file.metadata();
  const auto format = metadata.find("format");
  if (format == metadata.end() || format->second != kFormat) {
    throw Error(path.string(), "not a capture file (no \"format\": \"superpose-capture\" in its metadata)");
  }
  Capture c;
  try {
    c.models = json_or(metadata, "models", path).get<std::vector<std::string>>();
    c.residual_layers = json_or(metadata, "residual_layers", path).get<std::vector<int64_t>>();
    c.mlp_layers = json_or(metadata, "mlp_layers", path).get<std::vector<int64_t>>();
    c.domains = json_or(metadata, "domains", path).get<std::vector<std::string>>();
    c.sources = json_or(metadata, "sources", path).get<std::vector<std::string>>();
    c.n_layer = json_or(metadata, "n_layer", path).get<int64_t>();
    c.seq_len = json_or(metadata, "seq_len", path).get<int64_t>();
    c.causal = json_or(metadata, "causal", path).get<bool>();
  } catch (const nlohmann::json::exception&) {
    throw Error(path.string(), "capture metadata has a value of the wrong type");
  }
  c.positions_mode = parse_positions(metadata.count("positions") ? metadata.at("positions") : "",
                                     path.string() + ": metadata 'positions'");
  c.data = metadata.count("data") ? metadata.at("data") : "";
  c.labels = file.load("labels", torch::kInt64);
  c.documents = file.load("documents", torch::kInt64);
  c.positions = file.load("positions", torch::kInt64);
  c.token_ids = file.load("token_ids", torch::kInt64);
  c.document_tokens = file.load("document_tokens", torch::kInt64);
  c.document_starts = file.load("document_starts", torch::kInt64);
  const int64_t N = c.labels.size(0);
  const int64_t D = static_cast<int64_t>(c.sources.size());
  const auto bad = [&](const std::string& what) { return Error(path.string(), what); };
  for (const auto* t : {&c.labels, &c.documents, &c.positions, &c.token_ids}) {
    if (t->dim() != 1 || t->size(0) != N) throw bad("row metadata tensors differ in length");
  }
  if (c.document_starts.dim() != 1 || c.document_starts.size(0) != D + 1) {
    throw bad("document_starts does not have one entry per source plus one");
  }
  const auto starts = to_vector(c.document_starts);
  if (starts.front() != 0 || starts.back() != c.document_tokens.size(0) || !std::is_sorted(starts.begin(), starts.end())) {
    throw bad("document_starts is not an increasing index into document_tokens");
  }
  if (N > 0 && (c.documents.min().item<int64_t>() < 0 || c.documents.max().item<int64_t>() >= D)) {
    throw bad("a row names a document the capture does not hold");
  }
  for (const auto& info : file.tensors()) {
    const auto dot = info.name.find('.');
    if (dot == std::string::npos) continue;
    if (std::find(c.models.begin(), c.models.end(), info.name.substr(0, dot)) == c.models.end()) continue;
    auto value = file.load(info.name, torch::kFloat32);
    if (value.dim() != 2 || value.size(0) != N) {
      throw Error(path.string(), "tensor '" + info.name + "' does not have one row per captured row");
    }
    c.tensors[info.name] = std::move(value);
  }
  for (const auto& model : c.models) {
    for (int64_t i : c.residual_layers) {
      if (!c.tensors.count(Capture::residual_name(model, i))) {
        throw Error(path.string(), "tensor '" + Capture::residual_name(model, i) + "' is listed but missing");
      }
    }
  }
  return c;
}

ContextSnippet context_snippet(const Capture& capture, const Tokenizer& tokenizer, int64_t row, int64_t before,
                               int64_t after) {
  TORCH_CHECK(row >= 0 && row < capture.rows(), "context_snippet: row ", row, " out of range");
  ContextSnippet s;
  s.document = capture.documents[row].item<int64_t>();
  s.position = capture.positions[row].item<int64_t>();
  const auto tokens = capture.document(s.document);
  const auto n = static_cast<int64_t>(tokens.size());
  const auto slice = [&](int64_t a, int64_t b) {
    a = std::clamp<int64_t>(a, 0, n);
    b = std::clamp<int64_t>(b, a, n);
    return tokenizer.decode(std::vector<int64_t>(tokens.begin() + a, tokens.begin() + b));
  };
  if (s.position < 0) {
    s.before = slice(0, before + after + 1);
    return s;
  }
  s.before = slice(s.position - before, s.position);
  s.token = slice(s.position, s.position + 1);
  s.after = slice(s.position + 1, s.position + 1 + after);
  return s;
}

}  // namespace superpose
