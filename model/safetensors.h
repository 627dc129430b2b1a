// safetensors files: a strict, memory-mapped reader and an atomic writer.
// The one format every model, trace and checkpoint in the project is stored in.
//
// Format (https://github.com/huggingface/safetensors), all integers little-endian:
//   bytes [0, 8)       N, the header length, an unsigned 64-bit integer
//   bytes [8, 8+N)     the header: a UTF-8 JSON object, possibly followed by
//                      spaces (the Rust writer pads it to a multiple of 8):
//                        "NAME": {"dtype": "F32", "shape": [d0, d1, ...],
//                                 "data_offsets": [begin, end]}     one per tensor
//                        "__metadata__": {"key": "value", ...}        optional, strings only
//   bytes [8+N, EOF)   the data buffer. A tensor's bytes are buffer[begin, end),
//                      row-major (C order), little-endian, with no alignment
//                      promised. A 0-d tensor has shape [] and one element.
//
// The reader accepts what the reference implementation accepts and nothing
// more: N in [1, 100 MB] and inside the file; a header that is valid UTF-8 and
// a JSON object with no name twice (at any level); every entry exactly the
// three keys above; a known dtype (F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL);
// a shape of non-negative integers; data_offsets two non-negative integers,
// begin <= end, inside the buffer, with end - begin == numel x itemsize; and
// tensors that tile the buffer: no overlaps, no holes between tensors and no
// unclaimed bytes at its end (the reference Python/Rust implementation refuses
// such files, so a file it can read is a file this reader can read).
// A 0-element tensor takes no bytes and may sit at any tile boundary.
//
// Bytes are copied as they are: the host is assumed little-endian (x86-64,
// aarch64); a static_assert in the source enforces it.
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

// One tensor's entry in the header, as validated.
struct TensorInfo {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // the entry's data_offsets: [begin, end) within the data buffer
};

// An open, validated safetensors file.
//
// Ownership: the file is mapped read-only (MAP_PRIVATE) for the object's
// lifetime and unmapped by the destructor. Tensors returned by load() are
// owning copies and outlive the object. The file must not be truncated or
// rewritten in place while it is open (save_safetensors replaces files by
// rename, which is safe: the mapping keeps the old contents).
// Thread-safety: construction is single-threaded; afterwards every const
// method may be called from several threads at once.
// Errors: every problem with the file is an Error whose message names the
// file (and the tensor, where there is one) and says what is wrong.
// Movable, not copyable; a moved-from object holds no tensors.
class SafetensorsFile {
 public:
  // Maps and validates the whole header; throws Error naming the file and the problem.
  explicit SafetensorsFile(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // In file order: by begin offset, then by end, then by name.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(std::string_view name) const;  // nullptr if absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // A CPU, contiguous, owning copy of the tensor, converted to `dtype` when
  // given (nullopt: the stored dtype). F64, F32, F16 and BF16 convert among
  // themselves as torch's .to() does (rounding to nearest, overflow to inf).
  // Integer types convert among themselves only when every value fits the
  // requested type. BOOL loads only as Bool. Throws Error naming the file and
  // tensor when it is absent, the conversion is not one of these, or a value
  // does not fit.
  torch::Tensor load(std::string_view name, c10::optional<torch::Dtype> dtype = c10::nullopt) const;

 private:
  void unmap() noexcept;

  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;  // the whole mapped file
  size_t size_ = 0;
  size_t buffer_offset_ = 0;  // 8 + N: where the data buffer starts in the file
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

// Writes `tensors` in the given order (any device, any strides: each is copied
// to CPU and made contiguous) with optional string metadata. Dtypes map as
// Float F32, Half F16, BFloat16 BF16, Double F64, Long I64, Int I32, Short I16,
// Char I8, Byte U8, Bool BOOL; the header is padded with spaces to a multiple
// of 8 bytes and the tensors' bytes follow one another with no gaps.
// Atomic (see AtomicFile in file_util.h): written to a temporary file in the
// same directory, fsync'd and renamed over `path`; on any failure nothing is
// left at `path` (an existing file there is untouched) and the temporary is
// removed. Throws Error naming `path` on a duplicate or reserved
// ("__metadata__") name, a name or metadata string that is not UTF-8, an
// undefined, sparse or unsupported-dtype tensor, or any I/O failure.
// Thread-safety: safe to call concurrently for different paths.
void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace superpose
