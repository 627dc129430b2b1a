// Session JSON: strict reading, defaults for missing keys.
#include "app/studio/session.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "model/errors.h"
#include "model/file_util.h"

namespace superpose::studio {
namespace {

using nlohmann::json;

void require_object(const json& j, const std::string& where, std::initializer_list<const char*> keys) {
  if (!j.is_object()) throw Error(where, "expected an object, got " + std::string(j.type_name()));
  for (const auto& item : j.items()) {
    bool known = false;
    for (const char* key : keys) known = known || item.key() == key;
    if (!known) throw Error(where, "unknown key '" + item.key() + "'");
  }
}

template <typename T>
void read(const json& j, const char* key, T& out, const std::string& where) {
  if (!j.contains(key)) return;
  const json& v = j.at(key);
  const std::string at = where + "." + key;
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) throw Error(at, "expected true or false, got " + v.dump());
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) throw Error(at, "expected a string, got " + v.dump());
  } else if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer()) throw Error(at, "expected an integer, got " + v.dump());
    if constexpr (std::is_unsigned_v<T>) {
      if (v.is_number_integer() && !v.is_number_unsigned()) throw Error(at, "expected a non-negative integer, got " + v.dump());
    }
  } else {
    if (!v.is_number()) throw Error(at, "expected a number, got " + v.dump());
  }
  out = v.get<T>();
}

constexpr std::pair<TsneColour, const char*> kTsneColours[] = {{TsneColour::kModelDomain, "model-domain"},
                                                                 {TsneColour::kModel, "model"},
                                                                 {TsneColour::kDomain, "domain"},
                                                                 {TsneColour::kLayer, "layer"}};

const char* tsne_colour_name(TsneColour colour) {
  for (const auto& [c, name] : kTsneColours) {
    if (c == colour) return name;
  }
  return "model-domain";
}

TsneColour tsne_colour_from_name(const std::string& name, const std::string& where) {
  for (const auto& [c, n] : kTsneColours) {
    if (name == n) return c;
  }
  throw Error(where, "expected \"model-domain\", \"model\", \"domain\" or \"layer\", got \"" + name + "\"");
}

}  // namespace

bool Session::operator==(const Session& o) const {
  const GenerationSettings& a = settings;
  const GenerationSettings& b = o.settings;
  return superposition_dir == o.superposition_dir && base_dir == o.base_dir && fine_dir == o.fine_dir &&
         device == o.device && alpha == o.alpha && autoencoders == o.autoencoders && prompt == o.prompt &&
         a.max_new_tokens == b.max_new_tokens && a.temperature == b.temperature && a.top_k == b.top_k &&
         a.top_p == b.top_p && a.seed == b.seed && a.greedy == b.greedy && a.stop_at_eos == b.stop_at_eos &&
         panels == o.panels && tsne.layers == o.tsne.layers && tsne_colour == o.tsne_colour &&
         tsne.base == o.tsne.base && tsne.fine == o.tsne.fine &&
         tsne.superposition == o.tsne.superposition && tsne.max_documents == o.tsne.max_documents &&
         tsne.data == o.tsne.data && tsne.perplexity == o.tsne.perplexity && tsne.iterations == o.tsne.iterations &&
         neurons.max_documents == o.neurons.max_documents && neurons.data == o.neurons.data &&
         neurons.diversity == o.neurons.diversity && trajectories.max_documents == o.trajectories.max_documents &&
         trajectories.data == o.trajectories.data && trajectories.base == o.trajectories.base &&
         trajectories.fine == o.trajectories.fine && trajectories.superposition == o.trajectories.superposition &&
         follow_alpha == o.follow_alpha && colour_by_expert == o.colour_by_expert && metrics.max_documents == o.metrics.max_documents &&
         metrics.data == o.metrics.data && metrics.models == o.metrics.models && schedule.use == o.schedule.use &&
         schedule.segments == o.schedule.segments;
}

json session_to_json(const Session& s) {
  json j;
  j["version"] = 1;
  j["models"] = {{"superposition", s.superposition_dir},
                 {"base", s.base_dir},
                 {"fine", s.fine_dir},
                 {"device", s.device}};
  j["alpha"] = s.alpha ? json(*s.alpha) : json(nullptr);
  j["autoencoders"] = s.autoencoders ? json(*s.autoencoders) : json(nullptr);
  j["prompt"] = s.prompt;
  j["sampling"] = {{"max_new_tokens", s.settings.max_new_tokens},
                   {"temperature", s.settings.temperature},
                   {"top_k", s.settings.top_k},
                   {"top_p", s.settings.top_p},
                   {"seed", s.settings.seed},
                   {"greedy", s.settings.greedy},
                   {"stop_at_eos", s.settings.stop_at_eos}};
  j["generate"] = {{"colour", s.colour_by_expert ? "expert" : "alpha"}};
  j["panels"] = {{"generate", s.panels.generate},
                 {"alpha", s.panels.alpha},
                 {"layers", s.panels.layers},
                 {"model", s.panels.model},
                 {"tensors", s.panels.tensors},
                 {"tsne", s.panels.tsne},
                 {"neurons", s.panels.neurons},
                 {"trajectories", s.panels.trajectories},
                 {"metrics", s.panels.metrics}};
  j["tsne"] = {{"layers", s.tsne.layers},
               {"colour", tsne_colour_name(s.tsne_colour)},
               {"base", s.tsne.base},
               {"fine", s.tsne.fine},
               {"superposition", s.tsne.superposition},
               {"max_documents", s.tsne.max_documents},
               {"data", s.tsne.data},
               {"perplexity", s.tsne.perplexity},
               {"iterations", s.tsne.iterations}};
  j["neurons"] = {{"max_documents", s.neurons.max_documents},
                  {"data", s.neurons.data},
                  {"diversity", s.neurons.diversity}};
  j["trajectories"] = {{"max_documents", s.trajectories.max_documents},
                       {"data", s.trajectories.data},
                       {"base", s.trajectories.base},
                       {"fine", s.trajectories.fine},
                       {"superposition", s.trajectories.superposition},
                       {"follow_alpha", s.follow_alpha}};
  j["metrics"] = {{"max_documents", s.metrics.max_documents}, {"data", s.metrics.data}, {"models", s.metrics.models}};
  json segments = json::array();
  for (const ScheduleSegment& segment : s.schedule.segments) {
    segments.push_back({{"from", segment.from},
                        {"alpha", segment.alpha.size() == 1 ? json(segment.alpha[0]) : json(segment.alpha)}});
  }
  j["alpha_schedule"] = {{"use", s.schedule.use}, {"segments", segments}};
  return j;
}

Session session_from_json(const json& j, const std::string& where) {
  require_object(j, where, {"version", "models", "alpha", "autoencoders", "prompt", "sampling", "generate", "panels",
                            "tsne", "neurons", "trajectories", "metrics", "alpha_schedule"});
  Session s;
  int64_t version = 1;
  read(j, "version", version, where);
  if (version != 1) throw Error(where + ".version", "unsupported version " + std::to_string(version) + " (expected 1)");
  if (j.contains("models")) {
    const std::string at = where + ".models";
    const json& m = j.at("models");
    require_object(m, at, {"superposition", "base", "fine", "device"});
    read(m, "superposition", s.superposition_dir, at);
    read(m, "base", s.base_dir, at);
    read(m, "fine", s.fine_dir, at);
    read(m, "device", s.device, at);
    if (s.base_dir.empty() != s.fine_dir.empty()) throw Error(at, "name both 'base' and 'fine', or neither");
    if (s.device != "auto" && s.device != "cpu" && s.device.rfind("cuda", 0) != 0) {
      throw Error(at + ".device", "expected auto, cpu or cuda[:N], got '" + s.device + "'");
    }
  }
  if (j.contains("alpha") && !j.at("alpha").is_null()) {
    const json& a = j.at("alpha");
    if (!a.is_array()) throw Error(where + ".alpha", "expected an array of numbers or null, got " + a.dump());
    std::vector<float> values;
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string at = where + ".alpha[" + std::to_string(i) + "]";
      if (!a[i].is_number()) throw Error(at, "expected a number, got " + a[i].dump());
      const double v = a[i].get<double>();
      if (!(v >= 0.0 && v <= 1.0)) throw Error(at, "α value " + a[i].dump() + " is outside [0, 1]");
      values.push_back(static_cast<float>(v));
    }
    if (values.empty()) throw Error(where + ".alpha", "expected at least one value");
    s.alpha = std::move(values);
  }
  if (j.contains("autoencoders") && !j.at("autoencoders").is_null()) {
    const json& a = j.at("autoencoders");
    if (!a.is_array()) throw Error(where + ".autoencoders", "expected an array of booleans or null, got " + a.dump());
    std::vector<bool> on;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!a[i].is_boolean()) {
        throw Error(where + ".autoencoders[" + std::to_string(i) + "]", "expected true or false, got " + a[i].dump());
      }
      on.push_back(a[i].get<bool>());
    }
    s.autoencoders = std::move(on);
  }
  read(j, "prompt", s.prompt, where);
  if (j.contains("sampling")) {
    const std::string at = where + ".sampling";
    const json& g = j.at("sampling");
    require_object(g, at, {"max_new_tokens", "temperature", "top_k", "top_p", "seed", "greedy", "stop_at_eos"});
    read(g, "max_new_tokens", s.settings.max_new_tokens, at);
    read(g, "temperature", s.settings.temperature, at);
    read(g, "top_k", s.settings.top_k, at);
    read(g, "top_p", s.settings.top_p, at);
    read(g, "seed", s.settings.seed, at);
    read(g, "greedy", s.settings.greedy, at);
    read(g, "stop_at_eos", s.settings.stop_at_eos, at);
    if (s.settings.max_new_tokens < 0) throw Error(at + ".max_new_tokens", "must be >= 0");
    if (!(s.settings.temperature > 0.0)) throw Error(at + ".temperature", "must be > 0");
    if (s.settings.top_k < 0) throw Error(at + ".top_k", "must be >= 0");
    if (!(s.settings.top_p > 0.0 && s.settings.top_p <= 1.0)) throw Error(at + ".top_p", "must be in (0, 1]");
  }
  if (j.contains("generate")) {
    const std::string at = where + ".generate";
    require_object(j.at("generate"), at, {"colour"});
    std::string colour = "alpha";
    read(j.at("generate"), "colour", colour, at);
    if (colour != "alpha" && colour != "expert") {
      throw Error(at + ".colour", "expected \"alpha\" or \"expert\", got \"" + colour + "\"");
    }
    s.colour_by_expert = colour == "expert";
  }
  if (j.contains("panels")) {
    const std::string at = where + ".panels";
    const json& p = j.at("panels");
    require_object(p, at, {"generate", "alpha", "layers", "model", "tensors", "tsne", "neurons", "trajectories", "metrics"});
    read(p, "generate", s.panels.generate, at);
    read(p, "alpha", s.panels.alpha, at);
    read(p, "layers", s.panels.layers, at);
    read(p, "model", s.panels.model, at);
    read(p, "tensors", s.panels.tensors, at);
    read(p, "tsne", s.panels.tsne, at);
    read(p, "neurons", s.panels.neurons, at);
    read(p, "trajectories", s.panels.trajectories, at);
    read(p, "metrics", s.panels.metrics, at);
  }
  if (j.contains("tsne")) {
    const std::string at = where + ".tsne";
    const json& t = j.at("tsne");
    require_object(t, at, {"layers", "layer", "colour", "base", "fine", "superposition", "max_documents", "data",
                           "perplexity", "iterations"});
    if (t.contains("layer") && t.contains("layers")) throw Error(at, "give 'layers' or 'layer', not both");
    if (t.contains("layer")) {  // one state, as sessions wrote before maps could hold several
      int64_t layer = 0;
      read(t, "layer", layer, at);
      if (layer < 0) throw Error(at + ".layer", "must be >= 0");
      s.tsne.layers = {layer};
    }
    if (t.contains("layers")) {
      const json& v = t.at("layers");
      const std::string here = at + ".layers";
      if (!v.is_array() || v.empty()) throw Error(here, "expected a non-empty array of state indices, got " + v.dump());
      s.tsne.layers.clear();
      for (const json& e : v) {
        if (!e.is_number_integer() || e.get<int64_t>() < 0) {
          throw Error(here, "expected state indices >= 0, got " + e.dump());
        }
        const int64_t layer = e.get<int64_t>();
        if (std::find(s.tsne.layers.begin(), s.tsne.layers.end(), layer) != s.tsne.layers.end()) {
          throw Error(here, "state " + std::to_string(layer) + " is listed twice");
        }
        s.tsne.layers.push_back(layer);
      }
    }
    if (t.contains("colour")) {
      std::string colour;
      read(t, "colour", colour, at);
      s.tsne_colour = tsne_colour_from_name(colour, at + ".colour");
    }
    read(t, "base", s.tsne.base, at);
    read(t, "fine", s.tsne.fine, at);
    read(t, "superposition", s.tsne.superposition, at);
    read(t, "max_documents", s.tsne.max_documents, at);
    read(t, "data", s.tsne.data, at);
    read(t, "perplexity", s.tsne.perplexity, at);
    read(t, "iterations", s.tsne.iterations, at);
    if (s.tsne.max_documents < 0) throw Error(at + ".max_documents", "must be >= 0 (0 = all)");
    if (!(s.tsne.perplexity > 0.0)) throw Error(at + ".perplexity", "must be > 0");
    if (s.tsne.iterations < 1) throw Error(at + ".iterations", "must be >= 1");
  }
  if (j.contains("neurons")) {
    const std::string at = where + ".neurons";
    const json& n = j.at("neurons");
    require_object(n, at, {"max_documents", "data", "diversity"});
    read(n, "max_documents", s.neurons.max_documents, at);
    read(n, "data", s.neurons.data, at);
    read(n, "diversity", s.neurons.diversity, at);
    if (s.neurons.max_documents < 0) throw Error(at + ".max_documents", "must be >= 0 (0 = all)");
  }
  if (j.contains("trajectories")) {
    const std::string at = where + ".trajectories";
    const json& t = j.at("trajectories");
    require_object(t, at, {"max_documents", "data", "base", "fine", "superposition", "follow_alpha"});
    read(t, "max_documents", s.trajectories.max_documents, at);
    read(t, "data", s.trajectories.data, at);
    read(t, "base", s.trajectories.base, at);
    read(t, "fine", s.trajectories.fine, at);
    read(t, "superposition", s.trajectories.superposition, at);
    read(t, "follow_alpha", s.follow_alpha, at);
    if (s.trajectories.max_documents < 0) throw Error(at + ".max_documents", "must be >= 0 (0 = all)");
  }
  if (j.contains("metrics")) {
    const std::string at = where + ".metrics";
    const json& m = j.at("metrics");
    require_object(m, at, {"max_documents", "data", "models"});
    read(m, "max_documents", s.metrics.max_documents, at);
    read(m, "data", s.metrics.data, at);
    read(m, "models", s.metrics.models, at);
    if (s.metrics.max_documents < 0) throw Error(at + ".max_documents", "must be >= 0 (0 = all)");
    if (s.metrics.models.find_first_not_of(" ,") == std::string::npos) {
      throw Error(at + ".models", "name at least one model");
    }
  }
  if (j.contains("alpha_schedule")) {
    const std::string at = where + ".alpha_schedule";
    const json& a = j.at("alpha_schedule");
    require_object(a, at, {"use", "segments"});
    read(a, "use", s.schedule.use, at);
    if (a.contains("segments")) {
      const json& list = a.at("segments");
      if (!list.is_array()) throw Error(at + ".segments", "expected an array, got " + list.dump());
      for (size_t i = 0; i < list.size(); ++i) {
        const std::string seg_at = at + ".segments[" + std::to_string(i) + "]";
        require_object(list[i], seg_at, {"from", "alpha"});
        if (!list[i].contains("from") || !list[i].contains("alpha")) throw Error(seg_at, "needs 'from' and 'alpha'");
        ScheduleSegment segment;
        read(list[i], "from", segment.from, seg_at);
        if (segment.from < 0) throw Error(seg_at + ".from", "must be >= 0");
        if (!s.schedule.segments.empty() && segment.from <= s.schedule.segments.back().from) {
          throw Error(seg_at + ".from", "must be greater than the previous segment's");
        }
        const json& v = list[i].at("alpha");
        const json values = v.is_array() ? v : json::array({v});
        if (values.empty()) throw Error(seg_at + ".alpha", "expected at least one value");
        for (const json& x : values) {
          if (!x.is_number()) throw Error(seg_at + ".alpha", "expected a number or an array of numbers, got " + x.dump());
          const double d = x.get<double>();
          if (!(d >= 0.0 && d <= 1.0)) throw Error(seg_at + ".alpha", "α value " + x.dump() + " is outside [0, 1]");
          segment.alpha.push_back(static_cast<float>(d));
        }
        s.schedule.segments.push_back(std::move(segment));
      }
    }
  }
  return s;
}

void save_session(const Session& session, const std::filesystem::path& path) {
  write_file_atomic(path, session_to_json(session).dump(2) + "\n");
}

Session load_session(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string(), "cannot open the session file");
  std::stringstream text;
  text << in.rdbuf();
  json j;
  try {
    j = json::parse(text.str());
  } catch (const json::parse_error& e) {
    throw Error(path.string(), std::string("not valid JSON (") + e.what() + ")");
  }
  return session_from_json(j, path.string());
}

Session capture_session(const AppState& state, const Snapshot& snapshot) {
  Session s;
  s.superposition_dir = state.superposition_dir;
  s.base_dir = state.base_dir;
  s.fine_dir = state.fine_dir;
  s.device = state.device;
  if (snapshot.superposition) {
    const SuperpositionInfo& info = *snapshot.superposition;
    if (info.alpha_overridden) s.alpha = info.alpha_in_force;
    if (info.autoencoder_enabled != info.has_autoencoder) s.autoencoders = info.autoencoder_enabled;
  }
  s.prompt = state.prompt;
  s.settings = state.settings;
  s.settings.pause_after = 0;
  s.colour_by_expert = state.colour_by_expert;
  s.panels = state.panels;
  s.tsne = state.tsne.request;
  s.tsne_colour = state.tsne.colour;
  s.neurons = state.neurons.request;
  s.trajectories = state.trajectories.request;
  s.follow_alpha = state.trajectories.follow_alpha;
  s.metrics = state.metrics.request;
  s.schedule = state.schedule;
  return s;
}

void apply_session(const Session& session, AppState& state, Worker& worker) {
  state.superposition_dir = session.superposition_dir;
  state.base_dir = session.base_dir;
  state.fine_dir = session.fine_dir;
  state.device = session.device;
  state.prompt = session.prompt;
  state.settings = session.settings;
  state.colour_by_expert = session.colour_by_expert;
  state.panels = session.panels;
  const int64_t chunk = state.tsne.request.chunk;
  state.tsne.request = session.tsne;
  state.tsne.request.chunk = chunk;
  state.tsne.colour = session.tsne_colour;
  state.neurons.request = session.neurons;
  state.trajectories.request = session.trajectories;
  state.trajectories.follow_alpha = session.follow_alpha;
  {
    const EvalRequest kept = state.metrics.request;  // seq_len and batch_size are not saved
    state.metrics.request = session.metrics;
    state.metrics.request.seq_len = kept.seq_len;
    state.metrics.request.batch_size = kept.batch_size;
  }
  state.forget_alpha_edits();
  state.schedule = session.schedule;
  state.selected_token = -1;
  LoadSettings load;
  load.device = session.device;
  if (!session.superposition_dir.empty()) {
    if (!session.base_dir.empty()) {
      load.base = session.base_dir;
      load.fine = session.fine_dir;
    }
    worker.load_superposition(session.superposition_dir, load);
  } else if (!session.base_dir.empty()) {
    worker.load_experts(session.base_dir, session.fine_dir, load);
  }
  if (session.alpha) worker.set_alpha_all(*session.alpha);
  if (session.schedule.use && !session.schedule.segments.empty()) {
    worker.set_alpha_schedule(session.schedule.segments);
  } else {
    worker.clear_alpha_schedule();
  }
  if (session.autoencoders) {
    for (size_t l = 0; l < session.autoencoders->size(); ++l) {
      worker.set_autoencoder(static_cast<int64_t>(l), (*session.autoencoders)[l]);
    }
  }
}

}  // namespace superpose::studio
