// safetensors: round trips of every dtype, and every malformed file refused with its reason.
#include <cstring>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/errors.h"
#include "model/safetensors.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tensor_compare.h"

namespace superpose {
namespace {

namespace fs = std::filesystem;

// Writes 8-byte length + header text + buffer, exactly as given.
fs::path write_raw(const fs::path& path, const std::string& header, const std::string& buffer, int64_t length = -1) {
  const uint64_t n = length < 0 ? header.size() : static_cast<uint64_t>(length);
  std::ofstream out(path, std::ios::binary);
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << header << buffer;
  return path;
}

class Safetensors : public ::testing::Test {
 protected:
  fs::path file(const std::string& header, const std::string& buffer, int64_t length = -1) {
    return write_raw(temp_ / "t.safetensors", header, buffer, length);
  }
  testing::TempDir temp_;
};

TEST_F(Safetensors, EveryDtypeRoundTripsBitExactly) {
  torch::manual_seed(0);
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"f32", torch::randn({3, 5})},
      {"f16", torch::randn({4}).to(torch::kFloat16)},
      {"bf16", torch::randn({2, 3}).to(torch::kBFloat16)},
      {"f64", torch::randn({2}, torch::kFloat64)},
      {"i64", torch::arange(-3, 3, torch::kInt64)},
      {"i32", torch::arange(0, 7, torch::kInt32)},
      {"i16", torch::tensor({-2, 9}, torch::kInt16)},
      {"i8", torch::tensor({-128, 127}, torch::kInt8)},
      {"u8", torch::tensor({0, 255}, torch::kUInt8)},
      {"bool", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(3.5f)},
      {"empty", torch::zeros({0, 4})},
      {"strided", torch::randn({4, 6}).t()},  // non-contiguous input
  };
  const auto path = temp_ / "all.safetensors";
  save_safetensors(path, tensors, {{"format", "pt"}, {"note", "é"}});
  const SafetensorsFile f(path);
  EXPECT_EQ(f.metadata().at("note"), "é");
  EXPECT_EQ(f.tensors().size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    auto got = f.load(name);
    EXPECT_EQ(got.scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(got, t)) << name;
  }
  EXPECT_EQ(f.find("bf16")->dtype, "BF16");
  EXPECT_EQ(f.find("absent"), nullptr);
}

TEST_F(Safetensors, HalfPrecisionConvertsLikeTorch) {
  const auto path = temp_ / "h.safetensors";
  auto bf = torch::randn({64}).to(torch::kBFloat16);
  auto half = torch::randn({64}).to(torch::kFloat16);
  save_safetensors(path, {{"bf", bf}, {"half", half}, {"ids", torch::arange(5)}});
  const SafetensorsFile f(path);
  EXPECT_TRUE(torch::equal(f.load("bf", torch::kFloat32), bf.to(torch::kFloat32)));
  EXPECT_TRUE(torch::equal(f.load("half", torch::kFloat32), half.to(torch::kFloat32)));
  EXPECT_TRUE(torch::equal(f.load("ids", torch::kInt32), torch::arange(5, torch::kInt32)));
  SUPERPOSE_EXPECT_THROW_WITH(f.load("ids", torch::kFloat32), Error, "'ids' is I64 and cannot be loaded as Float");
  SUPERPOSE_EXPECT_THROW_WITH(f.load("nope"), Error, "h.safetensors", "no tensor 'nope'");
}

TEST_F(Safetensors, AcceptsPaddedHeadersAndUnalignedData) {
  // One F16 tensor at offset 0 after a 7-byte-padded header, then an F32 at odd offset 2.
  const std::string header =
      R"({"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})"
      "       ";
  float one = 1.5f;
  std::string buffer("\x00\x3c", 2);  // F16 1.0
  buffer.append(reinterpret_cast<const char*>(&one), 4);
  const SafetensorsFile f(file(header, buffer));
  EXPECT_EQ(f.load("a", torch::kFloat32).item<float>(), 1.0f);
  EXPECT_EQ(f.load("b").item<float>(), 1.5f);
}

TEST_F(Safetensors, TruncatedAndOversizedHeadersAreRefused) {
  const std::string ok = R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})";
  SUPERPOSE_EXPECT_THROW_WITH(SafetensorsFile(temp_ / "missing.safetensors"), Error, "missing.safetensors",
                              "cannot open");
  std::ofstream(temp_ / "short.safetensors") << "abc";
  SUPERPOSE_EXPECT_THROW_WITH(SafetensorsFile(temp_ / "short.safetensors"), Error, "short.safetensors",
                              "3 bytes is too short");
  SUPERPOSE_EXPECT_THROW_WITH(SafetensorsFile(file("", "", 0)), Error, "t.safetensors", "header length is 0");
  SUPERPOSE_EXPECT_THROW_WITH(SafetensorsFile(file(ok, "xy", 1000)), Error, "header length 1000 exceeds the file size");
  SUPERPOSE_EXPECT_THROW_WITH(SafetensorsFile(file(ok, "xy", int64_t(1) << 40)), Error, "100 MB limit");
  // The data buffer cut short: the tensor's offsets point past its end.
  SUPERPOSE_EXPECT_THROW_WITH(SafetensorsFile(file(ok, "x")), Error, "tensor 'a'", "outside the data buffer of 1 bytes");
}

TEST_F(Safetensors, GarbledHeadersAreRefused) {
  SUPERPOSE_EXPECT_THROW_WITH(SafetensorsFile(file("{\"a\": [1, 2", "")), Error, "header is not valid JSON");
  SUPERPOSE_EXPECT_THROW_WITH(SafetensorsFile(file("[1, 2]", "")), Error, "header is not a JSON object");
  SUPERPOSE_EXPECT_THROW_WITH(SafetensorsFile(file(R"({"a": 3})", "")), Error, "tensor 'a' is not an object");
  SUPERPOSE_EXPECT_THROW_WITH(
      SafetensorsFile(file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", "abcd")), Error,
      "unknown field 'x'");
  SUPERPOSE_EXPECT_THROW_WITH(SafetensorsFile(file(R"({"a":{"dtype":"F32","shape":[1]}})", "abcd")), Error,
                              "lacks dtype, shape or data_offsets");
  SUPERPOSE_EXPECT_THROW_WITH(
      SafetensorsFile(file(R"({"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}})", "abcd")), Error,
      "unsupported dtype \"Q4\"");
  SUPERPOSE_EXPECT_THROW_WITH(
      SafetensorsFile(file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "abcd")), Error,
      "is not non-negative integers");
  SUPERPOSE_EXPECT_THROW_WITH(
      SafetensorsFile(file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4]}})", "abcd")), Error,
      "is not two non-negative integers");
  SUPERPOSE_EXPECT_THROW_WITH(
      SafetensorsFile(file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", "abcd")), Error,
      "end before they begin");
  SUPERPOSE_EXPECT_THROW_WITH(
      SafetensorsFile(file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd")), Error,
      "needs 8 bytes but data_offsets span 4");
  SUPERPOSE_EXPECT_THROW_WITH(
      SafetensorsFile(file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,4]}})",
                           "abcd")),
      Error, "more bytes than fit in 64 bits");
  SUPERPOSE_EXPECT_THROW_WITH(SafetensorsFile(file(R"({"__metadata__":{"k":1}})", "")), Error,
                              "__metadata__ value of 'k' is not a string");
  SUPERPOSE_EXPECT_THROW_WITH(
      SafetensorsFile(file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                           "ab")),
      Error, "tensor 'a' appears twice");
}

TEST_F(Safetensors, OverlapsHolesAndUncoveredBytesAreRefused) {
  SUPERPOSE_EXPECT_THROW_WITH(
      SafetensorsFile(file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})",
                           "abc")),
      Error, "tensors 'a' and 'b' overlap");
  SUPERPOSE_EXPECT_THROW_WITH(
      SafetensorsFile(file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}})",
                           "abc")),
      Error, "bytes [1, 2] of the data buffer belong to no tensor");
  SUPERPOSE_EXPECT_THROW_WITH(SafetensorsFile(file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", "abc")),
                              Error, "2 bytes at the end of the data buffer belong to no tensor");
}

TEST_F(Safetensors, FailedSavesLeaveNothingBehind) {
  const auto path = temp_ / "out.safetensors";
  SUPERPOSE_EXPECT_THROW_WITH(save_safetensors(path, {{"a", torch::zeros({1})}, {"a", torch::zeros({1})}}), Error,
                              "out.safetensors", "'a' used twice");
  SUPERPOSE_EXPECT_THROW_WITH(save_safetensors(path, {{"c", torch::zeros({1}, torch::kComplexFloat)}}), Error,
                              "unsupported dtype");
  SUPERPOSE_EXPECT_THROW_WITH(save_safetensors(temp_ / "no/such/dir/x.safetensors", {{"a", torch::zeros({1})}}),
                              Error, "no/such/dir/x.safetensors", "cannot create");
  // Nothing at all was left in the directory: no target, no temporaries.
  int entries = 0;
  for (auto it = fs::directory_iterator(temp_.path()); it != fs::directory_iterator(); ++it) ++entries;
  EXPECT_EQ(entries, 0);
}

}  // namespace
}  // namespace superpose
