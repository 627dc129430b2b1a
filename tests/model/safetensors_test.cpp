// safetensors and atomic files: round trips of every dtype, byte-identity with
// the reference writer, and every malformed file refused with its reason.
#include <dirent.h>
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/errors.h"
#include "model/file_util.h"
#include "model/safetensors.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tensor_compare.h"

namespace superpose {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtures = SUPERPOSE_FIXTURES;

// The 8-byte little-endian length, the header text and the buffer, exactly as
// given; `length` replaces the true header length when set.
std::string assemble(const std::string& header, const std::string& buffer, std::optional<uint64_t> length = {}) {
  const uint64_t n = length.value_or(header.size());
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes += static_cast<char>((n >> (8 * i)) & 0xff);
  return bytes + header + buffer;
}

// One header entry: "name":{"dtype":..,"shape":..,"data_offsets":[begin,end]}.
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape, uint64_t begin,
                  uint64_t end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
         std::to_string(begin) + "," + std::to_string(end) + "]}";
}

std::string object(const std::vector<std::string>& entries) {
  std::string out = "{";
  for (size_t i = 0; i < entries.size(); ++i) out += (i ? "," : "") + entries[i];
  return out + "}";
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// Names in a directory, with opendir (see TempDir for why not std::filesystem).
std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Same dtype, shape and bytes (so NaN payloads and -0 count), on the CPU and
// contiguous; on failure names the first differing element.
::testing::AssertionResult same_bits(const torch::Tensor& got, const torch::Tensor& want) {
  if (got.scalar_type() != want.scalar_type()) {
    return ::testing::AssertionFailure() << "dtype " << got.scalar_type() << " != expected " << want.scalar_type();
  }
  if (got.sizes() != want.sizes()) {
    return ::testing::AssertionFailure() << "shape " << got.sizes() << " != expected " << want.sizes();
  }
  if (!got.device().is_cpu() || !got.is_contiguous()) return ::testing::AssertionFailure() << "not CPU contiguous";
  const auto w = want.detach().resolve_neg().to(torch::kCPU).contiguous();
  const auto* a = static_cast<const uint8_t*>(got.data_ptr());
  const auto* b = static_cast<const uint8_t*>(w.data_ptr());
  const size_t bytes = static_cast<size_t>(got.numel()) * got.element_size();
  for (size_t i = 0; i < bytes; ++i) {
    if (a[i] != b[i]) {
      const int64_t index = static_cast<int64_t>(i / got.element_size());
      return ::testing::AssertionFailure()
             << "first difference at flat index " << index << ": got " << got.flatten()[index].item<double>()
             << ", expected " << w.flatten()[index].item<double>();
    }
  }
  return ::testing::AssertionSuccess();
}

// Every bit pattern is a value worth round-tripping: random bits cover NaN
// payloads, infinities, subnormals and -0.
torch::Tensor random_bits(torch::Dtype dtype, int64_t n) {
  switch (dtype) {
    case torch::kFloat16:
    case torch::kBFloat16:
      return torch::randint(-32768, 32768, {n}, torch::kInt16).view(dtype);
    case torch::kFloat32:
      return torch::randint(std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max(), {n},
                            torch::kInt32)
          .view(dtype);
    default:
      return torch::randint(-(int64_t(1) << 62), int64_t(1) << 62, {n}, torch::kInt64).view(dtype);
  }
}

class Safetensors : public ::testing::Test {
 protected:
  // Writes `bytes` as bad.safetensors and passes when opening it throws an
  // Error whose one-line message names the file and holds every phrase.
  ::testing::AssertionResult refused(const std::string& bytes, std::initializer_list<std::string> phrases) {
    const fs::path path = temp_ / "bad.safetensors";
    spit(path, bytes);
    return refused_path(path, phrases);
  }
  ::testing::AssertionResult refused(const std::string& header, const std::string& buffer,
                                     std::initializer_list<std::string> phrases) {
    return refused(assemble(header, buffer), phrases);
  }
  static ::testing::AssertionResult refused_path(const fs::path& path, std::initializer_list<std::string> phrases) {
    try {
      SafetensorsFile file(path);
    } catch (const Error& e) {
      const std::string message = e.what();
      if (message.find(path.string()) == std::string::npos) {
        return ::testing::AssertionFailure() << "message '" << message << "' does not name " << path;
      }
      if (message.find('\n') != std::string::npos) {
        return ::testing::AssertionFailure() << "message '" << message << "' is not one line";
      }
      for (const auto& phrase : phrases) {
        if (message.find(phrase) == std::string::npos) {
          return ::testing::AssertionFailure() << "message '" << message << "' lacks '" << phrase << "'";
        }
      }
      return ::testing::AssertionSuccess() << message;
    } catch (const std::exception& e) {
      return ::testing::AssertionFailure() << "threw something other than Error: " << e.what();
    }
    return ::testing::AssertionFailure() << "opened without error";
  }

  testing::TempDir temp_;
};

// ---------------------------------------------------------------- round trips

TEST_F(Safetensors, EveryDtypeRoundTripsBitExactly) {
  torch::manual_seed(0);
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"f32", random_bits(torch::kFloat32, 1000).view({10, 100})},
      {"f16", random_bits(torch::kFloat16, 999)},
      {"bf16", random_bits(torch::kBFloat16, 1001).view({7, 11, 13})},
      {"f64", random_bits(torch::kFloat64, 333)},
      {"f32_special", torch::tensor({0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-45f, 3.4e38f})},
      {"i64", torch::tensor(
                  {std::numeric_limits<int64_t>::min(), int64_t(-1), int64_t(0), std::numeric_limits<int64_t>::max()})},
      {"i32",
       torch::randint(std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max(), {3, 5}, torch::kInt32)},
      {"i16", torch::tensor({-32768, -1, 0, 32767}, torch::kInt16)},
      {"i8", torch::tensor({-128, -1, 0, 127}, torch::kInt8)},
      {"u8", torch::arange(256, torch::kInt64).to(torch::kUInt8).view({16, 16})},
      {"bool", torch::tensor({true, false, true})},
  };
  const auto path = temp_ / "all.safetensors";
  save_safetensors(path, tensors);
  const SafetensorsFile f(path);
  EXPECT_EQ(f.path(), path);
  ASSERT_EQ(f.tensors().size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, t] = tensors[i];
    EXPECT_EQ(f.tensors()[i].name, name) << "file order is the order given";
    EXPECT_TRUE(same_bits(f.load(name), t)) << name;
    EXPECT_TRUE(same_bits(f.load(name, t.scalar_type()), t)) << name << " (dtype named)";
  }
  const char* names[] = {"F32", "F16", "BF16", "F64", "F32", "I64", "I32", "I16", "I8", "U8", "BOOL"};
  for (size_t i = 0; i < tensors.size(); ++i) EXPECT_EQ(f.tensors()[i].dtype, names[i]);
  EXPECT_EQ(f.find("bf16")->shape, (std::vector<int64_t>{7, 11, 13}));
  EXPECT_EQ(f.find("absent"), nullptr);
  EXPECT_TRUE(f.metadata().empty());
}

TEST_F(Safetensors, FloatConversionsMatchTorch) {
  torch::manual_seed(1);
  auto values = torch::cat({torch::randn({500}) * 1000, torch::randn({500}) * 1e-6,
                            torch::tensor({0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e6f, 65504.f, 70000.f})});
  const std::vector<torch::Dtype> floats = {torch::kFloat32, torch::kFloat16, torch::kBFloat16, torch::kFloat64};
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto dtype : floats) tensors.push_back({std::string(c10::toString(dtype)), values.to(dtype).view({2, -1})});
  const auto path = temp_ / "floats.safetensors";
  save_safetensors(path, tensors);
  const SafetensorsFile f(path);
  for (const auto& [name, stored] : tensors) {
    for (auto dtype : floats) {
      EXPECT_TRUE(same_bits(f.load(name, dtype), stored.to(dtype))) << name << " -> " << dtype;
    }
  }
}

TEST_F(Safetensors, IntegersConvertOnlyWhenTheValuesFit) {
  const auto path = temp_ / "ints.safetensors";
  save_safetensors(path, {{"ids", torch::tensor({-3, 0, 300}, torch::kInt64)},
                          {"bytes", torch::tensor({0, 200}, torch::kUInt8)},
                          {"small", torch::tensor({-1, 5}, torch::kInt8)},
                          {"mask", torch::tensor({true, false})},
                          {"x", torch::ones({2})},
                          {"empty", torch::zeros({0}, torch::kInt64)}});
  const SafetensorsFile f(path);
  EXPECT_TRUE(same_bits(f.load("ids", torch::kInt32), torch::tensor({-3, 0, 300}, torch::kInt32)));
  EXPECT_TRUE(same_bits(f.load("ids", torch::kInt16), torch::tensor({-3, 0, 300}, torch::kInt16)));
  EXPECT_TRUE(same_bits(f.load("bytes", torch::kInt64), torch::tensor({0, 200}, torch::kInt64)));
  EXPECT_TRUE(same_bits(f.load("small", torch::kInt32), torch::tensor({-1, 5}, torch::kInt32)));
  EXPECT_TRUE(same_bits(f.load("empty", torch::kUInt8), torch::zeros({0}, torch::kUInt8)));
  SUPERPOSE_EXPECT_THROW_WITH(f.load("ids", torch::kInt8), Error, "ints.safetensors", "tensor 'ids'",
                              "values in [-3, 300] that do not fit I8");
  SUPERPOSE_EXPECT_THROW_WITH(f.load("bytes", torch::kInt8), Error, "values in [0, 200] that do not fit I8");
  SUPERPOSE_EXPECT_THROW_WITH(f.load("small", torch::kUInt8), Error, "values in [-1, 5] that do not fit U8");
  SUPERPOSE_EXPECT_THROW_WITH(f.load("ids", torch::kFloat32), Error, "ints.safetensors",
                              "tensor 'ids' is I64 and cannot be loaded as F32");
  SUPERPOSE_EXPECT_THROW_WITH(f.load("x", torch::kInt64), Error, "tensor 'x' is F32 and cannot be loaded as I64");
  SUPERPOSE_EXPECT_THROW_WITH(f.load("x", torch::kComplexFloat), Error, "cannot be loaded as ComplexFloat");
  SUPERPOSE_EXPECT_THROW_WITH(f.load("mask", torch::kUInt8), Error, "tensor 'mask' is BOOL and cannot be loaded as U8");
  SUPERPOSE_EXPECT_THROW_WITH(f.load("bytes", torch::kBool), Error, "is U8 and cannot be loaded as BOOL");
  EXPECT_TRUE(same_bits(f.load("mask", torch::kBool), torch::tensor({true, false})));
  SUPERPOSE_EXPECT_THROW_WITH(f.load("nope"), Error, "ints.safetensors", "no tensor 'nope'");
}

TEST_F(Safetensors, MetadataRoundTrips) {
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"note", "é 日本 \"quoted\" \\ back"}, {"empty", ""}, {"multi\nline", "a\tb"}};
  const auto path = temp_ / "meta.safetensors";
  save_safetensors(path, {{"x", torch::ones({1})}}, metadata);
  EXPECT_EQ(SafetensorsFile(path).metadata(), metadata);
  // No metadata, no "__metadata__" entry at all.
  save_safetensors(path, {{"x", torch::ones({1})}});
  EXPECT_EQ(slurp(path).find("__metadata__"), std::string::npos);
  // Metadata alone, no tensors.
  save_safetensors(path, {}, {{"k", "v"}});
  const SafetensorsFile only(path);
  EXPECT_TRUE(only.tensors().empty());
  EXPECT_EQ(only.metadata().at("k"), "v");
}

TEST_F(Safetensors, EmptyTensorsAndScalarsRoundTrip) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"empty_first", torch::zeros({0}, torch::kFloat16)},
      {"scalar_f32", torch::tensor(3.5f)},
      {"empty_2d", torch::zeros({0, 4})},
      {"scalar_i64", torch::tensor(int64_t(-7))},
      {"empty_3d", torch::zeros({3, 0, 2}, torch::kInt32)},
      {"scalar_bool", torch::tensor(true)},
      {"scalar_bf16", torch::tensor(1.5f).to(torch::kBFloat16)},
      {"empty_last", torch::zeros({0}, torch::kBool)},
  };
  const auto path = temp_ / "small.safetensors";
  save_safetensors(path, tensors);
  const SafetensorsFile f(path);
  for (const auto& [name, t] : tensors) {
    const auto got = f.load(name);
    EXPECT_EQ(got.dim(), t.dim()) << name;
    EXPECT_TRUE(same_bits(got, t)) << name;
  }
  EXPECT_TRUE(f.find("scalar_f32")->shape.empty());
  EXPECT_EQ(f.load("scalar_bf16", torch::kFloat32).item<float>(), 1.5f);
  EXPECT_EQ(f.load("empty_2d", torch::kFloat16).sizes(), (std::vector<int64_t>{0, 4}));
  // Nothing but empty tensors: a zero-byte buffer.
  save_safetensors(path, {{"a", torch::zeros({0})}, {"b", torch::zeros({2, 0})}});
  EXPECT_EQ(SafetensorsFile(path).tensors().size(), 2u);
  // No tensors at all: the header "{}" padded to 8.
  save_safetensors(path, {});
  EXPECT_EQ(slurp(path), assemble("{}      ", ""));
  EXPECT_TRUE(SafetensorsFile(path).tensors().empty());
}

TEST_F(Safetensors, OddInputsAreSavedAsTheirValues) {
  torch::manual_seed(2);
  auto base = torch::randn({6, 8});
  auto grad = torch::randn({3}).requires_grad_();
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"transposed", base.t()},                          // non-contiguous
      {"sliced", base.slice(1, 2, 5)},                   // storage offset and strides
      {"expanded", torch::ones({1, 3}).expand({4, 3})},  // zero stride
      {"grad", grad},                                    // requires grad
      {"negated", base[0]._neg_view()},                  // lazy negation bit
  };
  const auto path = temp_ / "odd.safetensors";
  save_safetensors(path, tensors);
  const SafetensorsFile f(path);
  for (const auto& [name, t] : tensors) EXPECT_TRUE(same_bits(f.load(name), t.detach())) << name;
  EXPECT_TRUE(torch::equal(f.load("negated"), -base[0]));
}

TEST_F(Safetensors, WritesTheLayoutTheReferenceWrites) {
  const auto path = temp_ / "layout.safetensors";
  save_safetensors(path, {{"b", torch::ones({3}, torch::kFloat16)}, {"a", torch::ones({1}, torch::kFloat64)}},
                   {{"format", "pt"}});
  const std::string header =
      object({R"("__metadata__":{"format":"pt"})", entry("b", "F16", "[3]", 0, 6), entry("a", "F64", "[1]", 6, 14)});
  const std::string bytes = slurp(path);
  const std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  ASSERT_EQ(bytes.substr(0, 8 + padded.size()), assemble(padded, "")) << "compact JSON, in order, space-padded";
  EXPECT_EQ(bytes.size(), 8 + padded.size() + 14);
  EXPECT_EQ(padded.size() % 8, 0u);
}

TEST_F(Safetensors, ResavingReferenceFilesReproducesThemByteForByte) {
  // Written by Python's safetensors (tests/fixtures/make_reference.py).
  for (const char* name : {"gpt2-tiny/model.safetensors", "gpt2-tiny-bf16/model.safetensors",
                           "reference/tiny_0.safetensors", "reference/tiny_bf16.safetensors"}) {
    const fs::path original = kFixtures / name;
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    std::map<std::string, std::string> metadata;
    {
      const SafetensorsFile f(original);
      for (const auto& t : f.tensors()) tensors.push_back({t.name, f.load(t.name)});
      metadata = f.metadata();
    }  // unmapped: the loaded tensors own their data
    const auto copy = temp_ / "copy.safetensors";
    save_safetensors(copy, tensors, metadata);
    EXPECT_TRUE(slurp(copy) == slurp(original)) << name;
  }
}

TEST_F(Safetensors, AcceptsAHandBuiltFileWithAPaddedHeaderAndUnalignedData) {
  // Header order differs from buffer order; every multi-byte tensor sits at an odd offset.
  const double f64[2] = {1.25, -3.5};
  const float f32 = 0.1f;
  const uint16_t bf16[2] = {0x3F80, 0xC000};  // 1.0, -2.0
  std::string buffer("\x07", 1);
  buffer.append(reinterpret_cast<const char*>(f64), 16);  // [1, 17)
  buffer.append(reinterpret_cast<const char*>(&f32), 4);  // [17, 21)
  buffer.append(reinterpret_cast<const char*>(bf16), 4);  // [21, 25)
  buffer.append("\x01\x00", 2);                           // [25, 27)
  const std::string header =
      object({R"("__metadata__":{"source":"hand"})", entry("flags", "BOOL", "[2]", 25, 27),
              entry("d", "F64", "[2]", 1, 17), entry("s", "F32", "[]", 17, 21), entry("e", "I16", "[0,3]", 25, 25),
              entry("h", "BF16", "[2,1]", 21, 25), entry("u", "U8", "[1]", 0, 1)});
  for (const std::string padding : {"     ", "        ", "\n \t\r"}) {
    spit(temp_ / "hand.safetensors", assemble(header + padding, buffer));
    const SafetensorsFile f(temp_ / "hand.safetensors");
    std::vector<std::string> order;
    for (const auto& t : f.tensors()) order.push_back(t.name);
    EXPECT_EQ(order, (std::vector<std::string>{"u", "d", "s", "h", "e", "flags"}));
    EXPECT_EQ(f.find("d")->begin, 1u);
    EXPECT_EQ(f.find("d")->end, 17u);
    EXPECT_EQ(f.metadata().at("source"), "hand");
    EXPECT_EQ(f.load("u").item<uint8_t>(), 7);
    EXPECT_TRUE(torch::equal(f.load("d"), torch::tensor({1.25, -3.5}, torch::kFloat64)));
    EXPECT_EQ(f.load("s").item<float>(), 0.1f);
    EXPECT_EQ(f.load("s").dim(), 0);
    EXPECT_TRUE(torch::equal(f.load("h", torch::kFloat32), torch::tensor({{1.0f}, {-2.0f}})));
    EXPECT_TRUE(torch::equal(f.load("d", torch::kFloat16), torch::tensor({1.25, -3.5}).to(torch::kFloat16)));
    EXPECT_EQ(f.load("e").sizes(), (std::vector<int64_t>{0, 3}));
    EXPECT_TRUE(torch::equal(f.load("flags"), torch::tensor({true, false})));
  }
  // Non-ASCII names are fine.
  spit(temp_ / "utf8.safetensors", assemble(object({entry("é.日本", "U8", "[1]", 0, 1)}), "x"));
  EXPECT_NE(SafetensorsFile(temp_ / "utf8.safetensors").find("é.日本"), nullptr);
}

TEST_F(Safetensors, LoadedTensorsOutliveTheFileAndMovesKeepItOpen) {
  const auto path = temp_ / "m.safetensors";
  save_safetensors(path, {{"x", torch::arange(10, torch::kFloat32)}});
  torch::Tensor kept;
  {
    SafetensorsFile f(path);
    SafetensorsFile moved(std::move(f));
    EXPECT_EQ(f.find("x"), nullptr);  // NOLINT(bugprone-use-after-move): a moved-from file holds nothing
    kept = moved.load("x");
    SafetensorsFile assigned(path);
    assigned = std::move(moved);
    EXPECT_TRUE(torch::equal(assigned.load("x"), kept));
  }
  EXPECT_TRUE(torch::equal(kept, torch::arange(10, torch::kFloat32)));
  // Replacing the file (by rename) under an open reader leaves the reader its old contents.
  const SafetensorsFile reader(path);
  save_safetensors(path, {{"x", torch::zeros({10})}});
  EXPECT_TRUE(torch::equal(reader.load("x"), kept));
  EXPECT_TRUE(torch::equal(SafetensorsFile(path).load("x"), torch::zeros({10})));
}

// ---------------------------------------------------------------- corrupt files

const std::string kOk = object({entry("a", "U8", "[2]", 0, 2)});

TEST_F(Safetensors, RefusesMissingShortAndNonRegularFiles) {
  EXPECT_TRUE(refused_path(temp_ / "missing.safetensors", {"cannot open", "No such file"}));
  EXPECT_TRUE(refused_path(temp_.make_dir("dir.safetensors"), {"not a regular file"}));
  EXPECT_TRUE(refused("", {"file of 0 bytes is too short for a safetensors header"}));
  EXPECT_TRUE(refused("abc", {"file of 3 bytes is too short"}));
  EXPECT_TRUE(refused(std::string("\x02\0\0\0\0\0\0", 7), {"file of 7 bytes is too short"}));
}

TEST_F(Safetensors, RefusesBadHeaderLengths) {
  EXPECT_TRUE(refused(assemble("", ""), {"header length is 0"}));
  EXPECT_TRUE(refused(assemble(kOk, "xy", 0), {"header length is 0"}));
  EXPECT_TRUE(refused(assemble(kOk, "xy", 1000), {"header length 1000 exceeds the file size 63 minus 8"}));
  EXPECT_TRUE(refused(assemble(kOk, "", kOk.size() + 1), {"exceeds the file size", "truncated"}));
  EXPECT_TRUE(refused(assemble(kOk, "xy", uint64_t(1) << 40), {"header length 1099511627776", "100 MB limit"}));
  EXPECT_TRUE(refused(assemble(kOk, "xy", 100'000'001), {"100 MB limit"}));
  EXPECT_TRUE(refused(assemble(kOk, "xy", ~uint64_t(0)), {"100 MB limit"}));
  // A length that takes part of the buffer into the header.
  EXPECT_TRUE(refused(assemble(kOk, "xy", kOk.size() + 1), {"header is not valid JSON"}));
}

TEST_F(Safetensors, RefusesHeadersThatAreNotJsonObjects) {
  EXPECT_TRUE(refused(R"({"a": [1, 2)", "", {"header is not valid JSON", "unexpected end of input"}));
  EXPECT_TRUE(refused(kOk + "x", "xy", {"header is not valid JSON"}));
  EXPECT_TRUE(
      refused(kOk + std::string("\0\0\0", 3), "xy", {"header is not valid JSON: NUL byte at byte 53 of the header"}));
  EXPECT_TRUE(refused("{/* no comments */}", "", {"header is not valid JSON"}));
  EXPECT_TRUE(refused("{'a': 1}", "", {"header is not valid JSON"}));
  EXPECT_TRUE(refused(std::string(40, '#'), "", {"header is not valid JSON"}));
  EXPECT_TRUE(refused(std::string("{}\0", 3), "", {"header is not valid JSON: NUL byte at byte 2"}));
  EXPECT_TRUE(refused("        ", "", {"header is not valid JSON"}));
  EXPECT_TRUE(refused("[1, 2]", "", {"header is not a JSON object (got [1,2])"}));
  EXPECT_TRUE(refused("\"text\"", "", {"header is not a JSON object (got \"text\")"}));
  EXPECT_TRUE(refused("42", "", {"header is not a JSON object (got 42)"}));
}

TEST_F(Safetensors, RefusesHeadersThatAreNotUtf8) {
  const std::string prefix = R"({"a)", suffix = R"(":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  EXPECT_TRUE(refused(prefix + "\xff" + suffix, "x", {"header is not valid UTF-8 (byte 3 of the header)"}));
  EXPECT_TRUE(refused(prefix + "\xc0\xaf" + suffix, "x", {"not valid UTF-8"}));          // overlong '/'
  EXPECT_TRUE(refused(prefix + "\xed\xa0\x80" + suffix, "x", {"not valid UTF-8"}));      // surrogate
  EXPECT_TRUE(refused(prefix + "\xf4\x90\x80\x80" + suffix, "x", {"not valid UTF-8"}));  // above U+10FFFF
  EXPECT_TRUE(refused(kOk + "\xe2\x82", "xy", {"header is not valid UTF-8 (byte 53 of the header)"}));  // cut short
  // An escaped lone surrogate is valid UTF-8 on the wire but not a valid string.
  EXPECT_TRUE(refused(prefix + "\\ud800" + suffix, "x", {"header is not valid JSON", "surrogate"}));
}

TEST_F(Safetensors, RefusesMalformedEntries) {
  EXPECT_TRUE(refused(R"({"a": 3})", "", {"tensor 'a' is not an object (got 3)"}));
  EXPECT_TRUE(refused(R"({"a": [0, 4]})", "", {"tensor 'a' is not an object (got [0,4])"}));
  EXPECT_TRUE(refused(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", "abcd",
                      {"tensor 'a' has an unknown key 'x' (expected exactly dtype, shape and data_offsets)"}));
  EXPECT_TRUE(refused(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", "abcd", {"tensor 'a' has no 'dtype'"}));
  EXPECT_TRUE(refused(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", "abcd", {"tensor 'a' has no 'shape'"}));
  EXPECT_TRUE(refused(R"({"a":{"dtype":"F32","shape":[1]}})", "abcd", {"tensor 'a' has no 'data_offsets'"}));
  EXPECT_TRUE(refused(R"({"a":{}})", "", {"tensor 'a' has no 'dtype'"}));
}

TEST_F(Safetensors, RefusesUnknownDtypes) {
  for (const std::string dtype : {"Q4", "f32", "F8_E4M3", "U16", "C64", ""}) {
    EXPECT_TRUE(refused(object({entry("a", dtype, "[1]", 0, 1)}), "x",
                        {"tensor 'a' has unsupported dtype \"" + dtype + "\"",
                         "(supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)"}));
  }
  EXPECT_TRUE(refused(R"({"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", "abcd", {"unsupported dtype 4"}));
  EXPECT_TRUE(refused(R"({"a":{"dtype":null,"shape":[1],"data_offsets":[0,4]}})", "abcd", {"unsupported dtype null"}));
}

TEST_F(Safetensors, RefusesShapesThatAreNotNonNegativeIntegers) {
  const auto with_shape = [](const std::string& shape) { return object({entry("a", "U8", shape, 0, 4)}); };
  EXPECT_TRUE(refused(with_shape("4"), "abcd", {"tensor 'a': shape is not an array (got 4)"}));
  EXPECT_TRUE(refused(with_shape("\"4\""), "abcd", {"shape is not an array (got \"4\")"}));
  EXPECT_TRUE(refused(with_shape("{\"d\":4}"), "abcd", {"shape is not an array (got an object)"}));
  EXPECT_TRUE(refused(with_shape("[-1]"), "abcd", {"tensor 'a': shape [-1] is not an array of non-negative integers"}));
  EXPECT_TRUE(refused(with_shape("[2, 2.0]"), "abcd", {"shape [2,2.0] is not an array of non-negative integers"}));
  EXPECT_TRUE(refused(with_shape("[\"4\"]"), "abcd", {"is not an array of non-negative integers"}));
  EXPECT_TRUE(refused(with_shape("[null]"), "abcd", {"is not an array of non-negative integers"}));
  EXPECT_TRUE(refused(with_shape("[[4]]"), "abcd", {"shape a nested array is not an array of non-negative integers"}));
  EXPECT_TRUE(refused(with_shape("[18446744073709551616]"), "abcd", {"is not an array of non-negative integers"}));
  // Deep nesting is reported without recursing through it.
  EXPECT_TRUE(
      refused(with_shape(std::string(100000, '[') + std::string(100000, ']')), "abcd", {"shape a nested array"}));
}

TEST_F(Safetensors, RefusesBadDataOffsets) {
  const auto with_offsets = [](const std::string& offsets) {
    return R"({"a":{"dtype":"U8","shape":[4],"data_offsets":)" + offsets + "}}";
  };
  EXPECT_TRUE(refused(with_offsets("[4]"), "abcd", {"tensor 'a': data_offsets [4] is not two non-negative integers"}));
  EXPECT_TRUE(refused(with_offsets("[0,2,4]"), "abcd", {"data_offsets [0,2,4] is not two non-negative integers"}));
  EXPECT_TRUE(refused(with_offsets("[-1,3]"), "abcd", {"data_offsets [-1,3] is not two"}));
  EXPECT_TRUE(refused(with_offsets("[0,4.0]"), "abcd", {"data_offsets [0,4.0] is not two"}));
  EXPECT_TRUE(refused(with_offsets("[\"0\",4]"), "abcd", {"is not two non-negative integers"}));
  EXPECT_TRUE(refused(with_offsets("{\"begin\":0}"), "abcd", {"data_offsets an object is not two"}));
  EXPECT_TRUE(refused(with_offsets("[4,0]"), "abcd", {"tensor 'a': data_offsets [4,0] end before they begin"}));
}

TEST_F(Safetensors, RefusesSizesThatDisagreeWithShapes) {
  EXPECT_TRUE(refused(object({entry("a", "F32", "[2]", 0, 4)}), "abcd",
                      {"tensor 'a': shape [2] of F32 needs 8 bytes but data_offsets [0, 4) span 4"}));
  EXPECT_TRUE(refused(object({entry("a", "F32", "[2,3]", 0, 4)}), "abcd", {"shape [2, 3] of F32 needs 24 bytes"}));
  EXPECT_TRUE(refused(object({entry("a", "F32", "[]", 0, 0)}), "", {"shape [] of F32 needs 4 bytes but", "span 0"}));
  EXPECT_TRUE(refused(object({entry("a", "I16", "[0]", 0, 2)}), "ab", {"shape [0] of I16 needs 0 bytes"}));
  // Overflow-safe: these products wrap around in 64 bits.
  EXPECT_TRUE(refused(object({entry("a", "U8", "[4294967296,4294967296,4]", 0, 4)}), "abcd",
                      {"tensor 'a': shape [4294967296,4294967296,4] has more than 2^63 - 1 elements"}));
  EXPECT_TRUE(
      refused(object({entry("a", "U8", "[9223372036854775808]", 0, 4)}), "abcd", {"has more than 2^63 - 1 elements"}));
  EXPECT_TRUE(refused(object({entry("a", "U8", "[0,4294967296,4294967296]", 0, 0)}), "",
                      {"has more than 2^63 - 1 elements"}));  // numel 0, but no strides for torch
  EXPECT_TRUE(refused(object({entry("a", "I64", "[4611686018427387904]", 0, 4)}), "abcd",
                      {"shape [4611686018427387904] of I64 needs more than 2^64 bytes"}));
}

TEST_F(Safetensors, RefusesOffsetsOutsideTheBuffer) {
  EXPECT_TRUE(
      refused(kOk, "x", {"tensor 'a': data_offsets [0, 2) lie outside the data buffer of 1 bytes", "truncated"}));
  EXPECT_TRUE(refused(object({entry("a", "U8", "[0]", 5, 5)}), "", {"data_offsets [5, 5) lie outside"}));
  EXPECT_TRUE(refused(object({entry("a", "U8", "[1]", 18446744073709551614ull, 18446744073709551615ull)}), "x",
                      {"lie outside the data buffer of 1 bytes"}));
}

TEST_F(Safetensors, RefusesOverlapsHolesAndUncoveredBytes) {
  EXPECT_TRUE(refused(object({entry("a", "U8", "[2]", 0, 2), entry("b", "U8", "[2]", 1, 3)}), "abc",
                      {"tensors 'a' [0, 2) and 'b' [1, 3) overlap"}));
  EXPECT_TRUE(refused(object({entry("b", "U8", "[2]", 0, 2), entry("a", "U8", "[2]", 0, 2)}), "ab",
                      {"tensors 'a' [0, 2) and 'b' [0, 2) overlap"}));  // ties in name order
  // An empty tensor inside another also overlaps it.
  EXPECT_TRUE(refused(object({entry("a", "U8", "[4]", 0, 4), entry("e", "U8", "[0]", 2, 2)}), "abcd",
                      {"tensors 'a' [0, 4) and 'e' [2, 2) overlap"}));
  EXPECT_TRUE(refused(object({entry("a", "U8", "[1]", 0, 1), entry("b", "U8", "[1]", 2, 3)}), "abc",
                      {"bytes [1, 2) of the data buffer belong to no tensor (between 'a' and 'b')",
                       "the reference implementation refuses such files"}));
  EXPECT_TRUE(refused(object({entry("b", "U8", "[1]", 2, 3)}), "abc",
                      {"bytes [0, 2) of the data buffer belong to no tensor (before 'b')"}));
  EXPECT_TRUE(refused(object({entry("a", "U8", "[1]", 0, 1)}), "abc",
                      {"bytes [1, 3) at the end of the data buffer belong to no tensor",
                       "the reference implementation refuses such files"}));
  EXPECT_TRUE(refused("{}", "junk", {"bytes [0, 4) at the end of the data buffer belong to no tensor"}));
  // Empty tensors at tile boundaries are fine.
  spit(temp_ / "ok.safetensors",
       assemble(object({entry("e0", "U8", "[0]", 0, 0), entry("a", "U8", "[1]", 0, 1), entry("e1", "U8", "[0]", 1, 1),
                        entry("b", "U8", "[1]", 1, 2), entry("e2", "U8", "[0]", 2, 2)}),
                "ab"));
  EXPECT_EQ(SafetensorsFile(temp_ / "ok.safetensors").tensors().size(), 5u);
}

TEST_F(Safetensors, RefusesDuplicateNamesAtAnyLevel) {
  EXPECT_TRUE(refused(object({entry("a", "U8", "[1]", 0, 1), entry("a", "U8", "[1]", 1, 2)}), "ab",
                      {"name 'a' appears twice in the header"}));
  EXPECT_TRUE(
      refused(object({entry("a", "U8", "[1]", 0, 1), entry("b", "U8", "[1]", 1, 2), entry("a", "U8", "[0]", 2, 2)}),
              "ab", {"name 'a' appears twice in the header"}));
  EXPECT_TRUE(refused(R"({"a":{"dtype":"F32","dtype":"U8","shape":[1],"data_offsets":[0,1]}})", "x",
                      {"key 'dtype' appears twice in the entry 'a'"}));
  EXPECT_TRUE(
      refused(R"({"__metadata__":{"k":"1","k":"2"}})", "", {"key 'k' appears twice in the entry '__metadata__'"}));
  EXPECT_TRUE(refused(R"({"__metadata__":{},"__metadata__":{}})", "", {"name '__metadata__' appears twice"}));
}

TEST_F(Safetensors, RefusesMetadataThatIsNotStrings) {
  EXPECT_TRUE(refused(R"({"__metadata__":{"k":1}})", "", {"__metadata__ value of 'k' is not a string (got 1)"}));
  EXPECT_TRUE(refused(R"({"__metadata__":{"k":null}})", "", {"value of 'k' is not a string (got null)"}));
  EXPECT_TRUE(refused(R"({"__metadata__":{"k":{"x":"y"}}})", "", {"value of 'k' is not a string (got an object)"}));
  EXPECT_TRUE(refused(R"({"__metadata__":["k"]})", "", {"__metadata__ is not an object of strings (got [\"k\"])"}));
  EXPECT_TRUE(refused(R"({"__metadata__":"k"})", "", {"__metadata__ is not an object of strings"}));
}

TEST_F(Safetensors, MessagesStayOnOneLine) {
  // A name with a newline (escaped in JSON) and a control byte is shown escaped.
  EXPECT_TRUE(refused(R"({"a\nb\u0001":3})", "", {"tensor 'a\\x0ab\\x01' is not an object"}));
  EXPECT_TRUE(refused("{\n\"a\": 3,\n}", "", {"header is not valid JSON"}));
}

// ---------------------------------------------------------------- atomic saves

TEST_F(Safetensors, FailedSavesLeaveNothingBehind) {
  const auto path = temp_ / "out.safetensors";
  const auto x = torch::zeros({1});
  SUPERPOSE_EXPECT_THROW_WITH(save_safetensors(path, {{"a", x}, {"b", x}, {"a", x}}), Error, path.string(),
                              "tensor name 'a' is used twice");
  SUPERPOSE_EXPECT_THROW_WITH(save_safetensors(path, {{"__metadata__", x}}), Error, "'__metadata__' is reserved");
  SUPERPOSE_EXPECT_THROW_WITH(save_safetensors(path, {{"c", torch::zeros({1}, torch::kComplexFloat)}}), Error,
                              "tensor 'c' has unsupported dtype ComplexFloat");
  SUPERPOSE_EXPECT_THROW_WITH(save_safetensors(path, {{"u", torch::Tensor()}}), Error, "tensor 'u' is undefined");
  SUPERPOSE_EXPECT_THROW_WITH(save_safetensors(path, {{"s", torch::eye(3).to_sparse()}}), Error,
                              "tensor 's' is not dense");
  SUPERPOSE_EXPECT_THROW_WITH(save_safetensors(path, {{std::string("bad\xff", 4), x}}), Error,
                              "tensor name 'bad\\xff' is not valid UTF-8");
  SUPERPOSE_EXPECT_THROW_WITH(save_safetensors(path, {{"a", x}}, {{"k", "\xc0"}}), Error,
                              "metadata 'k' is not valid UTF-8");
  // Midway: the temporary file exists and holds the header when the second tensor fails.
  SUPERPOSE_EXPECT_THROW_WITH(
      save_safetensors(path, {{"a", x}, {"meta", torch::empty({2}, torch::TensorOptions().device(torch::kMeta))}}),
      Error, path.string(), "tensor 'meta' cannot be copied to the CPU");
  SUPERPOSE_EXPECT_THROW_WITH(save_safetensors(temp_ / "no/such/dir/x.safetensors", {{"a", x}}), Error,
                              "no/such/dir/x.safetensors", "cannot create a temporary file", "No such file");
  EXPECT_EQ(listing(temp_.path()), std::vector<std::string>{}) << "no target, no temporaries";

  // A failed save leaves an existing file as it was.
  save_safetensors(path, {{"old", x}});
  const std::string before = slurp(path);
  EXPECT_THROW(save_safetensors(path, {{"a", x}, {"meta", torch::empty({2}, torch::kMeta)}}), Error);
  EXPECT_EQ(slurp(path), before);
  EXPECT_EQ(listing(temp_.path()), std::vector<std::string>{"out.safetensors"});
}

// ---------------------------------------------------------------- file_util

class FileUtil : public ::testing::Test {
 protected:
  testing::TempDir temp_;
};

TEST_F(FileUtil, WritesAndReadsWholeFiles) {
  const auto path = temp_ / "bytes.bin";
  std::string bytes;
  for (int i = 0; i < 200000; ++i) bytes += static_cast<char>(i * 7);
  write_file_atomic(path, bytes);
  EXPECT_EQ(read_file(path), bytes);
  write_file_atomic(path, "short");  // replaces, not overwrites in place
  EXPECT_EQ(read_file(path), "short");
  write_file_atomic(path, "");
  EXPECT_EQ(read_file(path), "");
  EXPECT_EQ(listing(temp_.path()), std::vector<std::string>{"bytes.bin"});
}

TEST_F(FileUtil, ReadErrorsNameThePath) {
  SUPERPOSE_EXPECT_THROW_WITH(read_file(temp_ / "missing.txt"), Error, "missing.txt", "cannot open", "No such file");
  SUPERPOSE_EXPECT_THROW_WITH(read_file(temp_.path()), Error, temp_.path().string(), "is a directory");
}

TEST_F(FileUtil, UncommittedFilesVanish) {
  const auto path = temp_ / "f.txt";
  std::string temp_path;
  {
    AtomicFile file(path);
    temp_path = file.temp_path();
    EXPECT_EQ(temp_path.rfind(path.string() + ".tmp-", 0), 0u) << temp_path;
    file.write("partial");
    EXPECT_EQ(listing(temp_.path()).size(), 1u);  // only the temporary
  }
  EXPECT_EQ(listing(temp_.path()), std::vector<std::string>{});
  // An existing file is untouched by an abandoned write.
  write_file_atomic(path, "old");
  { AtomicFile(path).write("new"); }
  EXPECT_EQ(read_file(path), "old");
  EXPECT_EQ(listing(temp_.path()), std::vector<std::string>{"f.txt"});
}

TEST_F(FileUtil, FailuresNameThePathAndLeaveNoTemporary) {
  SUPERPOSE_EXPECT_THROW_WITH(write_file_atomic(temp_ / "nope/f.txt", "x"), Error, "nope/f.txt",
                              "cannot create a temporary file next to it");
  // The rename fails onto a non-empty directory; the temporary is removed.
  const auto dir = temp_.make_dir("taken");
  write_file_atomic(dir / "inside", "x");
  SUPERPOSE_EXPECT_THROW_WITH(write_file_atomic(dir, "x"), Error, dir.string(), "cannot move the new file into place");
  EXPECT_EQ(listing(temp_.path()), std::vector<std::string>{"taken"});
  SUPERPOSE_EXPECT_THROW_WITH(write_file_atomic("", "x"), Error, "(empty path)", "not a file name");
}

TEST_F(FileUtil, NewFilesGetTheUmaskMode) {
  const mode_t old = ::umask(027);
  write_file_atomic(temp_ / "f.txt", "x");
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat((temp_ / "f.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

}  // namespace
}  // namespace superpose
