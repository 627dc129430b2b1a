// Token-by-token generation for the superposed model.
#include "model/superposed_generate.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "model/errors.h"
#include "model/file_util.h"

namespace superpose {
namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  return shape.size() == 1 ? std::to_string(shape[0]) + " layers"
                           : std::to_string(shape[0]) + " layers × " + std::to_string(shape[1]) + " dimensions";
}

// One "alpha" entry of a schedule as a tensor of `shape`.
torch::Tensor schedule_alpha(const nlohmann::json& value, const std::vector<int64_t>& shape, const std::string& where) {
  auto number = [&](const nlohmann::json& v) {
    if (!v.is_number()) throw Error(where, "α values must be numbers, got " + v.dump());
    const double x = v.get<double>();
    if (!(x >= 0.0 && x <= 1.0)) throw Error(where, "α value " + v.dump() + " is outside [0, 1]");
    return x;
  };
  if (value.is_number()) return torch::full(shape, number(value), torch::kFloat32);
  if (!value.is_array() || static_cast<int64_t>(value.size()) != shape[0]) {
    throw Error(where, "\"alpha\" must be a number or a list of " + std::to_string(shape[0]) + " values (one per layer)");
  }
  auto out = torch::empty(shape, torch::kFloat32);
  for (int64_t l = 0; l < shape[0]; ++l) {
    const auto& row = value[static_cast<size_t>(l)];
    if (row.is_array()) {
      if (shape.size() != 2 || static_cast<int64_t>(row.size()) != shape[1]) {
        throw Error(where, "layer " + std::to_string(l) + " must hold " +
                               (shape.size() == 2 ? std::to_string(shape[1]) + " values" : "one value") +
                               " for a superposition of " + shape_text(shape));
      }
      for (int64_t d = 0; d < shape[1]; ++d) out[l][d] = number(row[static_cast<size_t>(d)]);
    } else {
      out[l].fill_(number(row));
    }
  }
  return out;
}

}  // namespace

AlphaSchedule::AlphaSchedule(std::vector<Segment> segments, const std::vector<int64_t>& alpha_shape,
                             const std::string& where)
    : segments_(std::move(segments)) {
  for (size_t i = 0; i < segments_.size(); ++i) {
    auto& s = segments_[i];
    const std::string entry = where + ": segment " + std::to_string(i);
    if (s.from < 0) throw Error(entry, "\"from\" must be >= 0, got " + std::to_string(s.from));
    if (i > 0 && s.from <= segments_[i - 1].from) {
      throw Error(entry, "\"from\" must increase (" + std::to_string(s.from) + " after " +
                             std::to_string(segments_[i - 1].from) + ")");
    }
    if (s.alpha.sizes().vec() != alpha_shape) throw Error(entry, "α must cover " + shape_text(alpha_shape));
    s.alpha = s.alpha.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    if (!torch::isfinite(s.alpha).all().item<bool>() || s.alpha.min().item<float>() < 0.0f ||
        s.alpha.max().item<float>() > 1.0f) {
      throw Error(entry, "α values must be in [0, 1]");
    }
  }
}

AlphaSchedule AlphaSchedule::from_json(const nlohmann::json& json, const std::vector<int64_t>& alpha_shape,
                                       const std::string& where) {
  if (!json.is_object() || !json.contains("schedule") || !json["schedule"].is_array()) {
    throw Error(where, "expected {\"schedule\": [{\"from\": position, \"alpha\": value}, ...]}");
  }
  std::vector<Segment> segments;
  size_t i = 0;
  for (const auto& item : json["schedule"]) {
    const std::string entry = where + ": segment " + std::to_string(i++);
    if (!item.is_object() || !item.contains("from") || !item.contains("alpha")) {
      throw Error(entry, "needs \"from\" and \"alpha\"");
    }
    if (!item["from"].is_number_integer()) throw Error(entry, "\"from\" must be an integer position");
    segments.push_back({item["from"].get<int64_t>(), schedule_alpha(item["alpha"], alpha_shape, entry)});
  }
  if (segments.empty()) throw Error(where, "the schedule has no segments");
  return AlphaSchedule(std::move(segments), alpha_shape, where);
}

AlphaSchedule AlphaSchedule::load(const std::filesystem::path& path, const std::vector<int64_t>& alpha_shape) {
  const std::string text = read_file(path);
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path.string(), std::string("not valid JSON: ") + e.what());
  }
  return from_json(json, alpha_shape, path.string());
}

std::optional<torch::Tensor> AlphaSchedule::at(int64_t position) const {
  std::optional<torch::Tensor> found;
  for (const auto& s : segments_) {
    if (s.from > position) break;
    found = s.alpha;
  }
  return found;
}

SuperposedGenerator::SuperposedGenerator(SuperposedModel model, std::vector<int64_t> prompt, bool use_cache,
                                         AlphaSchedule schedule)
    : model_(std::move(model)),
      sequence_(std::move(prompt)),
      use_cache_(use_cache && model_->causal()),
      schedule_(std::move(schedule)),
      cache_(model_->make_cache()) {
  const int64_t context = model_->context();
  if (sequence_.empty()) throw Error("prompt", "empty: need at least one token");
  if (static_cast<int64_t>(sequence_.size()) > context) {
    throw Error("prompt", std::to_string(sequence_.size()) + " tokens exceed the model's context of " +
                              std::to_string(context) + " positions");
  }
}

torch::Tensor SuperposedGenerator::alpha_for_new_position(int64_t position) {
  if (auto scheduled = schedule_.at(position)) return *scheduled;
  // A copy: on the CPU .to() returns the override itself, which set_alpha_layer edits in place.
  return model_->effective_alpha().to(torch::kCPU, torch::kFloat32).clone();
}

torch::Tensor SuperposedGenerator::next_logits() {
  const int64_t n = static_cast<int64_t>(sequence_.size());
  if (computed_ == n && logits_.defined()) return logits_;
  c10::InferenceMode inference;
  while (static_cast<int64_t>(alphas_.size()) < n) {
    alphas_.push_back(alpha_for_new_position(static_cast<int64_t>(alphas_.size())));
  }
  const auto device = model_->base()->wte->weight.device();
  const int64_t start = use_cache_ ? computed_ : 0;
  std::vector<int64_t> ids(sequence_.begin() + start, sequence_.end());
  std::vector<torch::Tensor> alphas(alphas_.begin() + start, alphas_.begin() + n);
  const auto input = torch::tensor(ids, torch::kLong).view({1, -1}).to(device);  // (1,T)
  const auto logits = model_->forward(input, use_cache_ ? &cache_ : nullptr, nullptr, torch::stack(alphas));
  computed_ = n;
  logits_ = logits[0][logits.size(1) - 1].to(torch::kFloat32);  // (V)
  return logits_;
}

void SuperposedGenerator::append(int64_t token) {
  if (full()) throw Error("generate", "the context of " + std::to_string(model_->context()) + " positions is full");
  sequence_.push_back(token);
  logits_ = torch::Tensor();
}

void SuperposedGenerator::reprefill() {
  alphas_.clear();
  cache_.clear();
  computed_ = 0;
  logits_ = torch::Tensor();
}

GenerateResult generate(SuperposedModel& model, const std::vector<int64_t>& prompt, const GenerateOptions& options,
                        Sampler& sampler, const AlphaSchedule& schedule, const SuperposedTokenCallback& on_token) {
  SuperposedGenerator generator(model, prompt, options.use_cache, schedule);
  GenerateResult result;
  while (static_cast<int64_t>(result.tokens.size()) < options.max_new_tokens) {
    if (generator.full()) {
      result.reason = StopReason::kContextFull;
      return result;
    }
    const int64_t token = sampler.sample(generator.next_logits());
    result.tokens.push_back(token);
    generator.append(token);
    if (on_token && !on_token(token, generator)) {
      result.reason = StopReason::kCancelled;
      return result;
    }
    if (options.stop_token && token == *options.stop_token) {
      result.reason = StopReason::kStopToken;
      return result;
    }
  }
  result.reason = StopReason::kMaxTokens;
  return result;
}

}  // namespace superpose
