// JSONL documents and their tokenized windows.
#include "model/dataset.h"

#include <algorithm>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "model/errors.h"
#include "model/file_util.h"

namespace superpose {

std::vector<Document> read_jsonl(const std::filesystem::path& path) {
  const std::string bytes = read_file(path);
  std::vector<Document> documents;
  size_t start = 0;
  int64_t line_number = 0;
  while (start < bytes.size()) {
    size_t end = bytes.find('\n', start);
    if (end == std::string::npos) end = bytes.size();
    ++line_number;
    std::string_view line(bytes.data() + start, end - start);
    start = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    const std::string where = path.string() + ":" + std::to_string(line_number);
    nlohmann::json object;
    try {
      object = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw Error(where, std::string("not valid JSON (") + e.what() + ")");
    }
    if (!object.is_object()) throw Error(where, "expected a JSON object {\"text\": ..., \"label\": 0|1}");
    const auto text = object.find("text");
    if (text == object.end() || !text->is_string()) throw Error(where, "missing string \"text\"");
    Document document;
    document.text = text->get<std::string>();
    if (document.text.empty()) throw Error(where, "\"text\" is empty");
    const auto label = object.find("label");
    if (label == object.end()) throw Error(where, "missing \"label\" (0 = base domain, 1 = fine domain)");
    if (!label->is_number_integer() || (label->get<int64_t>() != 0 && label->get<int64_t>() != 1)) {
      throw Error(where, "\"label\" must be 0 (base domain) or 1 (fine domain), got " + label->dump());
    }
    document.label = label->get<int64_t>();
    for (const auto& [key, field] : {std::pair{"domain", &document.domain}, std::pair{"source", &document.source}}) {
      const auto value = object.find(key);
      if (value == object.end() || value->is_null()) continue;
      if (!value->is_string()) throw Error(where, std::string("\"") + key + "\" must be a string");
      *field = value->get<std::string>();
    }
    documents.push_back(std::move(document));
  }
  if (documents.empty()) throw Error(path.string(), "holds no documents");
  return documents;
}

void write_jsonl(const std::filesystem::path& path, const std::vector<Document>& documents) {
  std::string out;
  for (const auto& document : documents) {
    nlohmann::json object{{"text", document.text}, {"label", document.label}};
    if (!document.domain.empty()) object["domain"] = document.domain;
    if (!document.source.empty()) object["source"] = document.source;
    out += object.dump();
    out += '\n';
  }
  write_file_atomic(path, out);
}

std::vector<std::string> domain_names(const std::vector<Document>& documents) {
  std::vector<std::string> names{"", ""};
  for (const auto& document : documents) {
    auto& name = names[static_cast<size_t>(document.label)];
    if (name.empty()) name = document.domain;
  }
  if (names[0].empty()) names[0] = "base";
  if (names[1].empty()) names[1] = "fine";
  return names;
}

Batch Batch::to(torch::Device device) const {
  return Batch{ids.to(device), targets.to(device), labels.to(device), documents.to(device), offsets.to(device)};
}

std::vector<int64_t> document_sequence(const Document& document, const Tokenizer& tokenizer, size_t index) {
  std::vector<int64_t> ids;
  if (const auto eos = tokenizer.eos_id()) ids.push_back(*eos);
  try {
    const auto text = tokenizer.encode(document.text);
    ids.insert(ids.end(), text.begin(), text.end());
  } catch (const Error& e) {
    throw Error("document " + std::to_string(index), e.what());
  }
  return ids;
}

TokenDataset TokenDataset::build(const std::vector<Document>& documents, const Tokenizer& tokenizer,
                                 int64_t seq_len) {
  if (seq_len < 1) throw Error("seq_len", "must be at least 1, got " + std::to_string(seq_len));
  TokenDataset dataset;
  dataset.seq_len_ = seq_len;
  const auto eos = tokenizer.eos_id();
  dataset.pad_id_ = eos.value_or(0);
  dataset.tokens_.reserve(documents.size());
  for (size_t d = 0; d < documents.size(); ++d) {
    std::vector<int64_t> ids = document_sequence(documents[d], tokenizer, d);
    const auto n = static_cast<int64_t>(ids.size());
    for (int64_t begin = 0; begin + 1 < n; begin += seq_len) {
      dataset.windows_.push_back(
          Window{static_cast<int64_t>(d), begin, std::min(seq_len + 1, n - begin), documents[d].label});
    }
    dataset.tokens_.push_back(std::move(ids));
  }
  return dataset;
}

int64_t TokenDataset::target_count(int64_t label) const {
  int64_t count = 0;
  for (const auto& window : windows_) {
    if (window.label == label) count += window.length - 1;
  }
  return count;
}

Batch TokenDataset::batch(const std::vector<size_t>& indices) const {
  const auto B = static_cast<int64_t>(indices.size());
  auto ids = torch::full({B, seq_len_}, pad_id_, torch::kInt64);
  auto targets = torch::full({B, seq_len_}, Batch::kIgnoreIndex, torch::kInt64);
  auto labels = torch::empty({B}, torch::kInt64);
  auto documents = torch::empty({B}, torch::kInt64);
  auto offsets = torch::empty({B}, torch::kInt64);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto targets_a = targets.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    TORCH_CHECK(indices[static_cast<size_t>(b)] < windows_.size(), "window index out of range");
    const auto& window = windows_[indices[static_cast<size_t>(b)]];
    const auto& tokens = tokens_[static_cast<size_t>(window.document)];
    for (int64_t t = 0; t + 1 < window.length; ++t) {
      ids_a[b][t] = tokens[static_cast<size_t>(window.begin + t)];
      targets_a[b][t] = tokens[static_cast<size_t>(window.begin + t + 1)];
    }
    labels[b] = window.label;
    documents[b] = window.document;
    offsets[b] = window.begin;
  }
  return Batch{ids, targets, labels, documents, offsets};
}

std::vector<size_t> TokenDataset::epoch_order(uint64_t seed, int64_t epoch) const {
  std::vector<size_t> order(windows_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(epoch) + 1);
  // Fisher-Yates with an explicit modulo: std::shuffle's use of the engine
  // is implementation-defined, this is not.
  for (size_t i = order.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng() % i);
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

std::vector<size_t> TokenDataset::range(size_t first, size_t count) const {
  std::vector<size_t> out;
  for (size_t i = first; i < std::min(windows_.size(), first + count); ++i) out.push_back(i);
  return out;
}

}  // namespace superpose
