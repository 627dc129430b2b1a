// safetensors: header validation, memory mapping, dtype conversion, atomic writing.
#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "model/errors.h"
#include "model/file_util.h"

namespace superpose {
namespace {

constexpr uint64_t kMaxHeader = 100ull << 20;  // 100 MB, as the reference implementation

struct DtypeEntry {
  const char* name;
  torch::Dtype dtype;
  size_t itemsize;
};
const DtypeEntry kDtypes[] = {
    {"F64", torch::kFloat64, 8}, {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8}, {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},   {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
};

const DtypeEntry* dtype_by_name(const std::string& name) {
  for (const auto& entry : kDtypes) {
    if (name == entry.name) return &entry;
  }
  return nullptr;
}

const DtypeEntry* dtype_by_torch(torch::Dtype dtype) {
  for (const auto& entry : kDtypes) {
    if (entry.dtype == dtype) return &entry;
  }
  return nullptr;
}

bool is_non_negative_integer(const nlohmann::json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
}

std::string offsets_text(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : path_(path) {
  const std::string where = path.string();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(where, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(where, "not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ < 8) {
    ::close(fd);
    throw Error(where, "file of " + std::to_string(size_) + " bytes is too short for a safetensors header");
  }
  void* mapped = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapped == MAP_FAILED) throw Error(where, std::string("cannot map the file: ") + std::strerror(errno));
  data_ = static_cast<const uint8_t*>(mapped);

  try {
    uint64_t header_length = 0;
    for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | data_[i];
    if (header_length == 0) throw Error(where, "header length is 0");
    if (header_length > kMaxHeader) {
      throw Error(where, "header length " + std::to_string(header_length) + " is larger than the 100 MB limit");
    }
    if (header_length > size_ - 8) {
      throw Error(where, "header length " + std::to_string(header_length) + " exceeds the file size " +
                             std::to_string(size_) + " (truncated file?)");
    }
    buffer_offset_ = 8 + static_cast<size_t>(header_length);
    const uint64_t buffer_size = size_ - buffer_offset_;

    // Parse, refusing duplicate top-level names (nlohmann would keep the last).
    std::set<std::string> seen;
    std::string duplicate;
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(
          reinterpret_cast<const char*>(data_ + 8), reinterpret_cast<const char*>(data_ + buffer_offset_),
          [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
            if (depth == 1 && event == nlohmann::json::parse_event_t::key && duplicate.empty() &&
                !seen.insert(parsed.get<std::string>()).second) {
              duplicate = parsed.get<std::string>();
            }
            return true;
          });
    } catch (const nlohmann::json::exception& e) {
      throw Error(where, std::string("header is not valid JSON: ") + e.what());
    }
    if (!header.is_object()) throw Error(where, "header is not a JSON object");
    if (!duplicate.empty()) throw Error(where, "tensor '" + duplicate + "' appears twice in the header");

    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__") {
        if (!entry.is_object()) throw Error(where, "__metadata__ is not an object");
        for (const auto& [key, value] : entry.items()) {
          if (!value.is_string()) throw Error(where, "__metadata__ value of '" + key + "' is not a string");
          metadata_[key] = value.get<std::string>();
        }
        continue;
      }
      const std::string what = "tensor '" + name + "'";
      if (!entry.is_object()) throw Error(where, what + " is not an object");
      for (const auto& [key, value] : entry.items()) {
        (void)value;
        if (key != "dtype" && key != "shape" && key != "data_offsets") {
          throw Error(where, what + " has an unknown field '" + key + "'");
        }
      }
      if (!entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets")) {
        throw Error(where, what + " lacks dtype, shape or data_offsets");
      }
      TensorInfo info;
      info.name = name;
      const auto& dtype = entry.at("dtype");
      const DtypeEntry* dt = dtype.is_string() ? dtype_by_name(dtype.get<std::string>()) : nullptr;
      if (!dt) throw Error(where, what + " has unsupported dtype " + dtype.dump());
      info.dtype = dt->name;
      const auto& shape = entry.at("shape");
      if (!shape.is_array()) throw Error(where, what + ": shape is not an array");
      uint64_t numel = 1;
      bool overflow = false;
      for (const auto& d : shape) {
        if (!is_non_negative_integer(d)) throw Error(where, what + ": shape " + shape.dump() + " is not non-negative integers");
        const uint64_t dim = d.get<uint64_t>();
        if (dim > static_cast<uint64_t>(INT64_MAX)) overflow = true;
        info.shape.push_back(static_cast<int64_t>(dim));
        if (dim != 0 && numel > UINT64_MAX / dim) overflow = true;
        numel *= dim;
      }
      const auto& offsets = entry.at("data_offsets");
      if (!offsets.is_array() || offsets.size() != 2 || !is_non_negative_integer(offsets[0]) ||
          !is_non_negative_integer(offsets[1])) {
        throw Error(where, what + ": data_offsets " + offsets.dump() + " is not two non-negative integers");
      }
      info.begin = offsets[0].get<uint64_t>();
      info.end = offsets[1].get<uint64_t>();
      if (info.begin > info.end) throw Error(where, what + ": data_offsets " + offsets.dump() + " end before they begin");
      if (info.end > buffer_size) {
        throw Error(where, what + ": data_offsets " + offsets_text(info.begin, info.end) +
                               " lie outside the data buffer of " + std::to_string(buffer_size) + " bytes");
      }
      if (overflow || numel > UINT64_MAX / dt->itemsize || numel * dt->itemsize != info.end - info.begin) {
        throw Error(where, what + ": shape " + shape.dump() + " of " + dt->name + " needs " +
                               (overflow ? std::string("more bytes than fit in 64 bits")
                                         : std::to_string(numel * dt->itemsize) + " bytes") +
                               " but data_offsets span " + std::to_string(info.end - info.begin));
      }
      tensors_.push_back(std::move(info));
    }

    // The tensors must tile the buffer: sorted by offset, each starts where the last ended.
    std::stable_sort(tensors_.begin(), tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    uint64_t covered = 0;
    const TensorInfo* previous = nullptr;
    for (const auto& t : tensors_) {
      if (t.begin < covered) {
        throw Error(where, "tensors '" + previous->name + "' and '" + t.name + "' overlap (" +
                               offsets_text(previous->begin, previous->end) + " and " +
                               offsets_text(t.begin, t.end) + ")");
      }
      if (t.begin > covered) {
        throw Error(where, "bytes " + offsets_text(covered, t.begin) + " of the data buffer belong to no tensor" +
                               " (before '" + t.name + "')");
      }
      covered = t.end;
      if (t.end > t.begin || !previous) previous = &t;
    }
    if (covered != buffer_size) {
      throw Error(where, std::to_string(buffer_size - covered) + " bytes at the end of the data buffer belong to no tensor");
    }
    for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  } catch (...) {
    unmap();
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() { unmap(); }

void SafetensorsFile::unmap() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept { *this = std::move(other); }

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = other.size_;
    buffer_offset_ = other.buffer_offset_;
    tensors_ = std::move(other.tensors_);
    index_ = std::move(other.index_);
    metadata_ = std::move(other.metadata_);
  }
  return *this;
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

torch::Tensor SafetensorsFile::load(std::string_view name, c10::optional<torch::Dtype> dtype) const {
  const TensorInfo* info = find(name);
  if (!info) throw Error(path_.string(), "no tensor '" + std::string(name) + "'");
  const DtypeEntry* stored = dtype_by_name(info->dtype);
  // Copy into owning, aligned memory: offsets in the file need not be aligned.
  auto tensor = torch::empty(info->shape, torch::TensorOptions().dtype(stored->dtype));
  if (info->end > info->begin) {
    std::memcpy(tensor.data_ptr(), data_ + buffer_offset_ + info->begin, info->end - info->begin);
  }
  if (!dtype || *dtype == stored->dtype) return tensor;
  const bool from_float = torch::isFloatingType(stored->dtype), to_float = torch::isFloatingType(*dtype);
  if (from_float != to_float || stored->dtype == torch::kBool || *dtype == torch::kBool) {
    throw Error(path_.string(), "tensor '" + info->name + "' is " + info->dtype + " and cannot be loaded as " +
                                    std::string(c10::toString(*dtype)));
  }
  return tensor.to(*dtype);
}

void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string where = path.string();
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> contiguous;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__" || header.contains(name)) throw Error(where, "tensor name '" + name + "' used twice");
    const DtypeEntry* dt = dtype_by_torch(tensor.scalar_type());
    if (!dt) throw Error(where, "tensor '" + name + "' has unsupported dtype " + std::string(c10::toString(tensor.scalar_type())));
    auto cpu = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(cpu.numel()) * dt->itemsize;
    header[name] = {{"dtype", dt->name}, {"shape", cpu.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    contiguous.push_back(cpu);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));

  AtomicFile file(path);
  file.write(length, sizeof(length));
  file.write(text);
  for (const auto& t : contiguous) file.write(t.data_ptr(), static_cast<size_t>(t.numel()) * t.element_size());
  file.commit();
}

}  // namespace superpose
