// safetensors: header validation, memory mapping, dtype conversion, atomic writing.
#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "model/errors.h"
#include "model/file_util.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian and is copied as is; a big-endian host needs byte swapping");

namespace superpose {
namespace {

using nlohmann::json;

constexpr uint64_t kMaxHeader = 100'000'000;  // bytes; the reference implementation's limit
constexpr const char* kMetadataKey = "__metadata__";
constexpr const char* kSupported = "F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL";

struct DtypeEntry {
  const char* name;
  torch::Dtype dtype;
  size_t itemsize;
};
const DtypeEntry kDtypes[] = {
    {"F64", torch::kFloat64, 8},   {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8},   {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},     {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
};

const DtypeEntry* dtype_by_name(std::string_view name) {
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

// The safetensors name where there is one ("F32"), else torch's ("ComplexFloat").
std::string dtype_text(torch::Dtype dtype) {
  const DtypeEntry* entry = dtype_by_torch(dtype);
  return entry ? entry->name : std::string(c10::toString(dtype));
}

// Offset of the first byte that is not well-formed UTF-8 (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF), or npos.
size_t invalid_utf8_at(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      if (c == 0xE0) low = 0xA0;   // overlong
      if (c == 0xED) high = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      if (c == 0xF0) low = 0x90;   // overlong
      if (c == 0xF4) high = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (s.size() - i < length) return i;
    const auto second = static_cast<unsigned char>(s[i + 1]);
    if (second < low || second > high) return i;
    for (size_t k = 2; k < length; ++k) {
      const auto next = static_cast<unsigned char>(s[i + k]);
      if (next < 0x80 || next > 0xBF) return i;
    }
    i += length;
  }
  return std::string_view::npos;
}

// `s` made safe for a one-line message: control bytes (and, when `s` is not
// UTF-8, bytes >= 0x80) as \xNN, cut to about `max` bytes.
std::string printable(std::string_view s, size_t max = 120) {
  const bool utf8 = invalid_utf8_at(s) == std::string_view::npos;
  std::string out;
  size_t i = 0;
  for (; i < s.size() && out.size() < max; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (i < s.size()) {
    // Do not end in the middle of a UTF-8 sequence.
    while (i < s.size() && utf8 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) out += s[i++];
    out += "...";
  }
  return out;
}

std::string in_quotes(std::string_view s) { return "'" + printable(s) + "'"; }

// A JSON value for a message, without dumping a deeply nested value (dump
// recurses, and a hostile header can nest millions deep).
std::string describe(const json& v) {
  if (v.is_object()) return "an object";
  if (v.is_array()) {
    for (const auto& element : v) {
      if (element.is_structured()) return "a nested array";
    }
  }
  return printable(v.dump(-1, ' ', false, json::error_handler_t::replace), 60);
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i == 8 && shape.size() > 10) {
      out += ", ... (" + std::to_string(shape.size()) + " dims)";
      break;
    }
    out += (i ? ", " : "") + std::to_string(shape[i]);
  }
  return out + "]";
}

std::string range_text(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

bool is_non_negative_integer(const json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
}

// nlohmann's message without its "[json.exception.parse_error.101] " prefix.
std::string json_reason(const json::exception& e) {
  std::string_view text = e.what();
  const size_t prefix = text.find("] ");
  if (text.rfind("[json.exception.", 0) == 0 && prefix != std::string_view::npos) text.remove_prefix(prefix + 2);
  return printable(text, 200);
}

// Parses the header, refusing any object (at any depth) with a key twice:
// nlohmann, like most JSON parsers, would silently keep the last one.
json parse_header(const std::string& where, std::string_view text) {
  const size_t bad = invalid_utf8_at(text);
  if (bad != std::string_view::npos) {
    throw Error(where, "header is not valid UTF-8 (byte " + std::to_string(bad) + " of the header)");
  }
  // nlohmann stops at a NUL byte as at the end of input and would ignore what
  // follows; JSON has no place for a raw NUL, so refuse it here.
  const size_t nul = text.find('\0');
  if (nul != std::string_view::npos) {
    throw Error(where, "header is not valid JSON: NUL byte at byte " + std::to_string(nul) + " of the header");
  }
  std::vector<std::set<std::string>> open_objects;  // the keys seen in each object being parsed
  std::string top_key;                              // the top-level entry being parsed
  std::string duplicate;                            // the first duplicate, described
  json header;
  try {
    header = json::parse(text.begin(), text.end(), [&](int, json::parse_event_t event, json& parsed) {
      switch (event) {
        case json::parse_event_t::object_start:
          open_objects.emplace_back();
          break;
        case json::parse_event_t::object_end:
          if (!open_objects.empty()) open_objects.pop_back();
          break;
        case json::parse_event_t::key: {
          const auto& key = parsed.get_ref<const std::string&>();
          if (open_objects.size() == 1) top_key = key;
          if (duplicate.empty() && !open_objects.empty() && !open_objects.back().insert(key).second) {
            duplicate = open_objects.size() == 1
                            ? "name " + in_quotes(key) + " appears twice in the header"
                            : "key " + in_quotes(key) + " appears twice in the entry " + in_quotes(top_key);
          }
          break;
        }
        default:
          break;
      }
      return true;
    });
  } catch (const json::exception& e) {
    throw Error(where, "header is not valid JSON: " + json_reason(e));
  }
  if (!header.is_object()) throw Error(where, "header is not a JSON object (got " + describe(header) + ")");
  if (!duplicate.empty()) throw Error(where, duplicate);
  return header;
}

// Validates one tensor entry (everything that does not involve other entries).
TensorInfo parse_entry(const std::string& where, const std::string& name, const json& entry, uint64_t buffer_size) {
  const std::string what = "tensor " + in_quotes(name);
  if (!entry.is_object()) throw Error(where, what + " is not an object (got " + describe(entry) + ")");
  for (const auto& item : entry.items()) {
    if (item.key() != "dtype" && item.key() != "shape" && item.key() != "data_offsets") {
      throw Error(where, what + " has an unknown key " + in_quotes(item.key()) +
                             " (expected exactly dtype, shape and data_offsets)");
    }
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(key)) throw Error(where, what + " has no '" + key + "'");
  }

  TensorInfo info;
  info.name = name;
  const json& dtype = entry.at("dtype");
  const DtypeEntry* dt = dtype.is_string() ? dtype_by_name(dtype.get_ref<const std::string&>()) : nullptr;
  if (!dt) throw Error(where, what + " has unsupported dtype " + describe(dtype) + " (supported: " + kSupported + ")");
  info.dtype = dt->name;

  // Elements, and the product of the non-zero dims: torch computes strides
  // from it, so it must fit in int64 even when a zero dim makes numel 0.
  const json& shape = entry.at("shape");
  if (!shape.is_array()) throw Error(where, what + ": shape is not an array (got " + describe(shape) + ")");
  bool too_large = false, has_zero = false;
  uint64_t product = 1;
  for (const auto& d : shape) {
    if (!is_non_negative_integer(d)) {
      throw Error(where, what + ": shape " + describe(shape) + " is not an array of non-negative integers");
    }
    const uint64_t dim = d.get<uint64_t>();
    const auto max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    if (dim > max) {
      too_large = true;
      info.shape.push_back(std::numeric_limits<int64_t>::max());
      continue;
    }
    info.shape.push_back(static_cast<int64_t>(dim));
    if (dim == 0) {
      has_zero = true;
    } else if (product > max / dim) {
      too_large = true;
    } else {
      product *= dim;
    }
  }
  if (too_large) throw Error(where, what + ": shape " + describe(shape) + " has more than 2^63 - 1 elements");
  const uint64_t numel = has_zero ? 0 : product;

  const json& offsets = entry.at("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2 || !is_non_negative_integer(offsets[0]) ||
      !is_non_negative_integer(offsets[1])) {
    throw Error(where, what + ": data_offsets " + describe(offsets) + " is not two non-negative integers");
  }
  info.begin = offsets[0].get<uint64_t>();
  info.end = offsets[1].get<uint64_t>();
  if (info.begin > info.end) {
    throw Error(where, what + ": data_offsets " + describe(offsets) + " end before they begin");
  }
  if (info.end > buffer_size) {
    throw Error(where, what + ": data_offsets " + range_text(info.begin, info.end) +
                           " lie outside the data buffer of " + std::to_string(buffer_size) +
                           " bytes (truncated file?)");
  }
  // numel <= 2^63 - 1 and itemsize <= 8 can still overflow 64 bits.
  const bool bytes_overflow = numel > std::numeric_limits<uint64_t>::max() / dt->itemsize;
  if (bytes_overflow || numel * dt->itemsize != info.end - info.begin) {
    throw Error(
        where,
        what + ": shape " + shape_text(info.shape) + " of " + dt->name + " needs " +
            (bytes_overflow ? std::string("more than 2^64 bytes") : std::to_string(numel * dt->itemsize) + " bytes") +
            " but data_offsets " + range_text(info.begin, info.end) + " span " + std::to_string(info.end - info.begin));
  }
  return info;
}

// Sorts `tensors` into file order and checks that they tile [0, buffer_size).
void check_tiling(const std::string& where, std::vector<TensorInfo>& tensors, uint64_t buffer_size) {
  std::stable_sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const char* kReference = "; the reference implementation refuses such files";
  uint64_t covered = 0;
  const TensorInfo* last = nullptr;  // the last tensor with bytes
  for (const auto& t : tensors) {
    if (t.begin < covered) {
      throw Error(where, "tensors " + in_quotes(last->name) + " " + range_text(last->begin, last->end) + " and " +
                             in_quotes(t.name) + " " + range_text(t.begin, t.end) + " overlap");
    }
    if (t.begin > covered) {
      throw Error(where, "bytes " + range_text(covered, t.begin) + " of the data buffer belong to no tensor (" +
                             (last ? "between " + in_quotes(last->name) + " and " : std::string("before ")) +
                             in_quotes(t.name) + ")" + kReference);
    }
    if (t.end > t.begin) {
      covered = t.end;
      last = &t;
    }
  }
  if (covered != buffer_size) {
    throw Error(where, "bytes " + range_text(covered, buffer_size) +
                           " at the end of the data buffer belong to no tensor" + kReference);
  }
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
    throw Error(where,
                "file of " + std::to_string(size_) + " bytes is too short for a safetensors header (8 bytes or more)");
  }
  void* mapped = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_error = errno;
  ::close(fd);  // the mapping keeps the file open
  if (mapped == MAP_FAILED) throw Error(where, std::string("cannot map the file: ") + std::strerror(map_error));
  data_ = static_cast<const uint8_t*>(mapped);

  try {
    uint64_t header_length = 0;
    for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | data_[i];
    if (header_length == 0) throw Error(where, "header length is 0");
    if (header_length > kMaxHeader) {
      throw Error(where, "header length " + std::to_string(header_length) +
                             " is larger than the 100 MB limit (not a safetensors file?)");
    }
    if (header_length > size_ - 8) {
      throw Error(where, "header length " + std::to_string(header_length) + " exceeds the file size " +
                             std::to_string(size_) + " minus 8 (truncated file?)");
    }
    buffer_offset_ = 8 + static_cast<size_t>(header_length);
    const uint64_t buffer_size = size_ - buffer_offset_;

    const json header = parse_header(
        where, std::string_view(reinterpret_cast<const char*>(data_ + 8), static_cast<size_t>(header_length)));
    for (const auto& item : header.items()) {
      const std::string& name = item.key();
      const json& entry = item.value();
      if (name == kMetadataKey) {
        if (!entry.is_object()) {
          throw Error(where, std::string(kMetadataKey) + " is not an object of strings (got " + describe(entry) + ")");
        }
        for (const auto& meta : entry.items()) {
          if (!meta.value().is_string()) {
            throw Error(where, std::string(kMetadataKey) + " value of " + in_quotes(meta.key()) +
                                   " is not a string (got " + describe(meta.value()) + ")");
          }
          metadata_[meta.key()] = meta.value().get<std::string>();
        }
        continue;
      }
      tensors_.push_back(parse_entry(where, name, entry, buffer_size));
    }
    check_tiling(where, tensors_, buffer_size);
    for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  } catch (...) {
    unmap();
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() { unmap(); }

void SafetensorsFile::unmap() noexcept {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept { *this = std::move(other); }

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    buffer_offset_ = std::exchange(other.buffer_offset_, 0);
    tensors_ = std::move(other.tensors_);
    index_ = std::move(other.index_);
    metadata_ = std::move(other.metadata_);
    other.tensors_.clear();
    other.index_.clear();
    other.metadata_.clear();
  }
  return *this;
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

torch::Tensor SafetensorsFile::load(std::string_view name, c10::optional<torch::Dtype> dtype) const {
  const std::string where = path_.string();
  const TensorInfo* info = find(name);
  if (!info) throw Error(where, "no tensor " + in_quotes(name));
  const DtypeEntry* stored = dtype_by_name(info->dtype);
  const torch::Dtype target = dtype.value_or(stored->dtype);
  // Only the dtypes of the table: torch has more (complex, float8, uint16...).
  const bool target_known = dtype_by_torch(target) != nullptr;
  const bool stored_float = torch::isFloatingType(stored->dtype);
  const bool target_float = target_known && torch::isFloatingType(target);
  const bool stored_int = stored->dtype != torch::kBool && !stored_float;
  const bool target_int = target_known && target != torch::kBool && !torch::isFloatingType(target);
  if (target != stored->dtype && !(stored_float && target_float) && !(stored_int && target_int)) {
    throw Error(where, "tensor " + in_quotes(info->name) + " is " + info->dtype + " and cannot be loaded as " +
                           dtype_text(target) +
                           " (floating types convert among themselves, integer types among themselves)");
  }

  // Copy into owning memory first: the file promises no alignment, and
  // torch's kernels assume aligned elements. Flat, so that conversion never
  // meets a shape with many dims; viewed as the stored shape at the end.
  const int64_t numel = static_cast<int64_t>((info->end - info->begin) / stored->itemsize);
  auto flat = torch::empty({numel}, torch::TensorOptions().dtype(stored->dtype));
  if (numel > 0) std::memcpy(flat.data_ptr(), data_ + buffer_offset_ + info->begin, info->end - info->begin);

  if (target != stored->dtype) {
    if (stored_int && numel > 0) {
      const int64_t low = flat.min().item<int64_t>(), high = flat.max().item<int64_t>();
      int64_t target_low = 0, target_high = 0;
      AT_DISPATCH_INTEGRAL_TYPES(target, "safetensors_range", [&] {
        target_low = static_cast<int64_t>(std::numeric_limits<scalar_t>::min());
        target_high = static_cast<int64_t>(std::numeric_limits<scalar_t>::max());
      });
      if (low < target_low || high > target_high) {
        throw Error(where, "tensor " + in_quotes(info->name) + " holds values in [" + std::to_string(low) + ", " +
                               std::to_string(high) + "] that do not fit " + dtype_text(target));
      }
    }
    flat = flat.to(target);
  }
  return flat.view(info->shape);
}

void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string where = path.string();

  // Validate everything and build the header before creating any file.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    for (const auto& [key, value] : metadata) {
      if (invalid_utf8_at(key) != std::string_view::npos || invalid_utf8_at(value) != std::string_view::npos) {
        throw Error(where, "metadata " + in_quotes(key) + " is not valid UTF-8");
      }
    }
    header[kMetadataKey] = metadata;
  }
  std::set<std::string_view> seen;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    const std::string what = "tensor " + in_quotes(name);
    if (name == kMetadataKey) throw Error(where, "tensor name '__metadata__' is reserved for the metadata");
    if (invalid_utf8_at(name) != std::string_view::npos)
      throw Error(where, "tensor name " + in_quotes(name) + " is not valid UTF-8");
    if (!seen.insert(name).second) throw Error(where, "tensor name " + in_quotes(name) + " is used twice");
    if (!tensor.defined()) throw Error(where, what + " is undefined");
    if (tensor.layout() != torch::kStrided) throw Error(where, what + " is not dense (sparse or other layout)");
    const DtypeEntry* dt = dtype_by_torch(tensor.scalar_type());
    if (!dt) {
      throw Error(where, what + " has unsupported dtype " + std::string(c10::toString(tensor.scalar_type())) +
                             " (supported: " + kSupported + ")");
    }
    const uint64_t bytes = static_cast<uint64_t>(tensor.numel()) * dt->itemsize;
    header[name] = {{"dtype", dt->name}, {"shape", tensor.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));

  AtomicFile file(path);
  file.write(length, sizeof(length));
  file.write(text);
  // One tensor at a time, so that saving from a GPU holds one CPU copy at a time.
  for (const auto& [name, tensor] : tensors) {
    torch::Tensor cpu;
    try {
      cpu = tensor.detach().resolve_conj().resolve_neg().to(torch::kCPU).contiguous();
    } catch (const c10::Error& e) {
      const std::string reason = e.what_without_backtrace();
      throw Error(where, "tensor " + in_quotes(name) +
                             " cannot be copied to the CPU: " + printable(reason.substr(0, reason.find('\n')), 200));
    }
    if (cpu.numel() > 0) file.write(cpu.data_ptr(), static_cast<size_t>(cpu.numel()) * cpu.element_size());
  }
  file.commit();
}

}  // namespace superpose
