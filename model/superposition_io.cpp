// Reading and writing superposition checkpoints.
#include "model/superposition_io.h"

#include <sys/stat.h>
#include <unistd.h>


#include <torch/torch.h>

#include "model/errors.h"
#include "model/file_util.h"
#include "model/safetensors.h"

namespace superpose {
namespace {

constexpr const char* kFormat = "superpose-superposition";
constexpr int kVersion = 1;

std::filesystem::path absolute_path(const std::filesystem::path& p) {
  if (p.is_absolute()) return p.lexically_normal();
  std::vector<char> cwd(4096);
  if (::getcwd(cwd.data(), cwd.size()) == nullptr) return p.lexically_normal();
  return (std::filesystem::path(cwd.data()) / p).lexically_normal();
}

bool path_exists(const std::filesystem::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

const nlohmann::json& field(const nlohmann::json& json, const char* key, const std::string& where) {
  if (!json.contains(key)) throw Error(where, std::string("missing \"") + key + "\"");
  return json[key];
}

int64_t positive_int(const nlohmann::json& json, const char* key, const std::string& where, int64_t min = 1) {
  const auto& v = field(json, key, where);
  if (!v.is_number_integer() || v.get<int64_t>() < min) {
    throw Error(where, std::string("\"") + key + "\" must be an integer >= " + std::to_string(min) + ", got " + v.dump());
  }
  return v.get<int64_t>();
}

std::string string_field(const nlohmann::json& json, const char* key, const std::string& where) {
  const auto& v = field(json, key, where);
  if (!v.is_string()) throw Error(where, std::string("\"") + key + "\" must be a string, got " + v.dump());
  return v.get<std::string>();
}

std::string shape_string(c10::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

SuperpositionSpec parse_superposition_spec(const nlohmann::json& json, const std::string& where) {
  if (!json.is_object()) throw Error(where, "expected a JSON object");
  if (string_field(json, "format", where) != kFormat) {
    throw Error(where, std::string("\"format\" must be \"") + kFormat + "\"");
  }
  if (positive_int(json, "version", where) != kVersion) {
    throw Error(where, "unsupported version " + json["version"].dump() + " (this build reads version 1)");
  }
  SuperpositionSpec spec;
  auto& c = spec.config;
  c.alpha.variant = parse_variant(string_field(json, "variant", where), where);
  c.alpha.n_layer = positive_int(json, "n_layer", where);
  c.alpha.n_embd = positive_int(json, "n_embd", where);
  c.alpha.n_control = positive_int(json, "control_points", where);
  c.alpha.degree = positive_int(json, "degree", where, 0);
  c.embedding_blend = parse_embedding_blend(string_field(json, "embedding_blend", where), where);

  const auto& ae = field(json, "autoencoders", where);
  const std::string ae_where = where + ": autoencoders";
  if (!ae.is_object()) throw Error(ae_where, "must be an object");
  const auto& layers = field(ae, "layers", ae_where);
  if (!layers.is_array()) throw Error(ae_where, "\"layers\" must be a list of block numbers");
  for (const auto& l : layers) {
    if (!l.is_number_integer()) throw Error(ae_where, "\"layers\" must hold integers, got " + l.dump());
    c.ae_layers.push_back(l.get<int64_t>());
  }
  c.autoencoder.variant = c.alpha.variant;
  c.autoencoder.n_embd = c.alpha.n_embd;
  c.autoencoder.conv = parse_conv_mode(string_field(ae, "convolution", ae_where), ae_where);
  c.autoencoder.bottleneck = positive_int(ae, "bottleneck", ae_where);
  if (c.alpha.variant == AlphaVariant::k2D) {
    c.autoencoder.local = positive_int(ae, "local", ae_where);
    c.autoencoder.adapter_rank = positive_int(ae, "adapter_rank", ae_where);
  }
  validate(c, where);

  const auto& experts = field(json, "experts", where);
  if (!experts.is_object()) throw Error(where, "\"experts\" must be an object with \"base\" and \"fine\"");
  spec.base_path = string_field(experts, "base", where + ": experts");
  spec.fine_path = string_field(experts, "fine", where + ": experts");
  if (json.contains("provenance")) {
    if (!json["provenance"].is_object()) throw Error(where, "\"provenance\" must be an object");
    spec.provenance = json["provenance"];
  }
  return spec;
}

nlohmann::json to_json(const SuperpositionSpec& spec) {
  const auto& c = spec.config;
  nlohmann::json ae = {{"layers", c.ae_layers},
                       {"convolution", conv_mode_name(c.autoencoder.conv)},
                       {"bottleneck", c.autoencoder.bottleneck}};
  if (c.alpha.variant == AlphaVariant::k2D) {
    ae["local"] = c.autoencoder.local;
    ae["adapter_rank"] = c.autoencoder.adapter_rank;
  }
  nlohmann::json json = {{"format", kFormat},
                         {"version", kVersion},
                         {"variant", variant_name(c.alpha.variant)},
                         {"n_layer", c.alpha.n_layer},
                         {"n_embd", c.alpha.n_embd},
                         {"control_points", c.alpha.n_control},
                         {"degree", c.alpha.degree},
                         {"embedding_blend", embedding_blend_name(c.embedding_blend)},
                         {"autoencoders", ae},
                         {"experts", {{"base", spec.base_path}, {"fine", spec.fine_path}}},
                         {"provenance", spec.provenance}};
  return json;
}

bool is_superposition_dir(const std::filesystem::path& dir) { return path_exists(dir / kSuperpositionJson); }

SuperpositionSpec read_superposition_spec(const std::filesystem::path& dir) {
  const auto path = dir / kSuperpositionJson;
  if (!path_exists(path)) {
    throw Error(dir.string(), std::string("not a superposition directory: no ") + kSuperpositionJson);
  }
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path.string(), std::string("not valid JSON: ") + e.what());
  }
  return parse_superposition_spec(json, path.string());
}

std::pair<LoadedModel, LoadedModel> load_experts(const std::filesystem::path& base_dir,
                                                 const std::filesystem::path& fine_dir, torch::Device device,
                                                 torch::Dtype dtype) {
  auto base = load_model(base_dir, device, dtype);
  auto fine = load_model(fine_dir, device, dtype);
  check_experts_match(base.config, fine.config, base_dir.string(), fine_dir.string());
  for (auto& p : base.model->parameters()) p.set_requires_grad(false);
  for (auto& p : fine.model->parameters()) p.set_requires_grad(false);
  return {std::move(base), std::move(fine)};
}

void assign_superposition_parameters(SuperposedModel& model, const std::map<std::string, torch::Tensor>& tensors,
                                     const std::string& where) {
  auto params = model->named_parameters();
  for (const auto& item : tensors) {
    if (!params.contains(item.first)) {
      throw Error(where, "unexpected tensor " + item.first + " (not part of this superposition's structure)");
    }
  }
  torch::NoGradGuard no_grad;
  for (auto& item : params) {
    const auto found = tensors.find(item.key());
    if (found == tensors.end()) throw Error(where, "missing tensor " + item.key());
    const auto& value = found->second;
    if (value.sizes() != item.value().sizes()) {
      throw Error(where, "tensor " + item.key() + " has shape " + shape_string(value.sizes()) + ", expected " +
                             shape_string(item.value().sizes()));
    }
    if (!value.is_floating_point()) throw Error(where, "tensor " + item.key() + " is not floating-point");
    if (!torch::isfinite(value).all().item<bool>()) {
      throw Error(where, "tensor " + item.key() + " holds NaN or infinite values");
    }
    item.value().copy_(value.to(item.value().device(), item.value().scalar_type()));
  }
}

void load_superposition_weights(SuperposedModel& model, const std::filesystem::path& path) {
  const SafetensorsFile file(path);
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& info : file.tensors()) {
    if (info.dtype != "F32" && info.dtype != "F16" && info.dtype != "BF16" && info.dtype != "F64") {
      throw Error(path.string(), "tensor " + info.name + " is " + info.dtype + ", expected a floating-point type");
    }
    tensors.emplace(info.name, file.load(info.name, torch::kFloat32));
  }
  assign_superposition_parameters(model, tensors, path.string());
}

LoadedSuperposition load_superposition(const std::filesystem::path& dir,
                                       const std::optional<std::filesystem::path>& base_dir,
                                       const std::optional<std::filesystem::path>& fine_dir, torch::Device device,
                                       torch::Dtype dtype) {
  LoadedSuperposition loaded;
  loaded.dir = dir;
  loaded.spec = read_superposition_spec(dir);
  auto resolve = [&](const std::string& written) {
    const std::filesystem::path p(written);
    return p.is_absolute() ? p : (dir / p).lexically_normal();
  };
  const auto base_path = base_dir ? *base_dir : resolve(loaded.spec.base_path);
  const auto fine_path = fine_dir ? *fine_dir : resolve(loaded.spec.fine_path);
  auto experts = load_experts(base_path, fine_path, device, dtype);
  loaded.base = std::move(experts.first);
  loaded.fine = std::move(experts.second);
  const auto& a = loaded.spec.config.alpha;
  const std::string json_path = (dir / kSuperpositionJson).string();
  if (a.n_layer != loaded.base.config.n_layer || a.n_embd != loaded.base.config.n_embd) {
    throw Error(json_path, "made for " + std::to_string(a.n_layer) + " layers of width " + std::to_string(a.n_embd) +
                               ", but the experts (" + base_path.string() + ") have " +
                               std::to_string(loaded.base.config.n_layer) + " layers of width " +
                               std::to_string(loaded.base.config.n_embd));
  }
  loaded.model = SuperposedModel(loaded.base.model, loaded.fine.model, loaded.spec.config);
  loaded.model->to_device(torch::kCPU, torch::kFloat32);
  load_superposition_weights(loaded.model, dir / kSuperpositionWeights);
  loaded.model->to_device(device, dtype);
  loaded.model->eval();
  loaded.base.model->eval();
  loaded.fine.model->eval();
  return loaded;
}

std::string relative_path(const std::filesystem::path& target, const std::filesystem::path& from) {
  const auto rel = absolute_path(target).lexically_relative(absolute_path(from));
  return rel.empty() ? absolute_path(target).string() : rel.string();
}

void save_superposition(const std::filesystem::path& dir, SuperposedModel& model, SuperpositionSpec spec,
                        const std::filesystem::path& base_dir, const std::filesystem::path& fine_dir,
                        bool replace, torch::Dtype storage) {
  spec.config = model->config();
  spec.base_path = relative_path(base_dir, dir);
  spec.fine_path = relative_path(fine_dir, dir);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& item : model->named_parameters()) {
    const bool alpha = item.key().rfind("alpha.", 0) == 0;
    tensors.emplace_back(item.key(),
                         item.value().detach().to(torch::kCPU, alpha ? torch::kFloat32 : storage).contiguous());
  }
  const std::map<std::string, std::string> metadata = {{"format", kFormat}};
  const std::string json = to_json(spec).dump(2) + "\n";
  std::error_code ec;
  if (replace && std::filesystem::is_directory(dir, ec)) {
    save_safetensors(dir / kSuperpositionWeights, tensors, metadata);
    write_file_atomic(dir / kSuperpositionJson, json);
    return;
  }
  AtomicDirectory out(dir);
  save_safetensors(out / kSuperpositionWeights, tensors, metadata);
  write_file_atomic(out / kSuperpositionJson, json);
  out.commit();
}

}  // namespace superpose
