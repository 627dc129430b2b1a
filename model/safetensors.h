// safetensors files: a strict, memory-mapped reader and an atomic writer.
//
// Format (https://github.com/huggingface/safetensors):
//   bytes 0..7       N, the header length, unsigned 64-bit little-endian
//   bytes 8..8+N     a UTF-8 JSON object (may be padded with trailing spaces):
//                      "NAME": {"dtype": "F32", "shape": [d0, d1, ...],
//                               "data_offsets": [begin, end]}   for each tensor
//                      "__metadata__": {"key": "value", ...}      optional, strings only
//   bytes 8+N..      the data buffer; a tensor's bytes are buffer[begin, end),
//                    row-major, little-endian.
// The reader accepts only what the reference implementation accepts: known
// dtypes (F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL), end - begin equal to
// numel x itemsize, offsets inside the buffer, no overlaps, no holes, the
// buffer exactly covered, no duplicate names. This host is little-endian
// (x86-64, aarch64), so bytes are copied as they are.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace superpose {

struct TensorInfo {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // offsets in the data buffer
};

// An open, validated safetensors file. The file stays mapped (read-only)
// for the object's lifetime; tensors returned by load() own their memory.
// Const methods are safe to call from several threads. Movable, not copyable.
class SafetensorsFile {
 public:
  // Maps and validates; throws Error naming the file and the problem.
  explicit SafetensorsFile(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in buffer order
  const TensorInfo* find(std::string_view name) const;                // nullptr if absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // A CPU, contiguous copy of the tensor, converted to `dtype` when given.
  // Floating types convert among themselves, integer types among themselves.
  // Throws Error naming the file and tensor when it is absent or the
  // conversion is not allowed.
  torch::Tensor load(std::string_view name, c10::optional<torch::Dtype> dtype = c10::nullopt) const;

 private:
  void unmap();

  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;  // the whole mapped file
  size_t size_ = 0;
  size_t buffer_offset_ = 0;       // 8 + N
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

// Writes the tensors (any device; copied to CPU, contiguous) in the given
// order, with optional string metadata, atomically: nothing appears at `path`
// unless the whole file was written. Throws Error on duplicate names, an
// unsupported dtype, or any I/O failure.
void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace superpose
