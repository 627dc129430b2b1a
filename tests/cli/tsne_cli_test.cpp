// superpose tsne, run as a user would: a CSV row per input row that keeps
// clusters apart, the KL in --json, and one line for every bad input.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "model/file_util.h"
#include "model/safetensors.h"
#include "tests/support/cli_runner.h"

namespace fs = std::filesystem;

namespace {

class TsneCli : public superpose::testing::CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    torch::manual_seed(11);
    // Three well-separated blobs of 40 points in 16 dimensions.
    const auto centres = torch::randn({3, 16}) * 8;
    labels_ = torch::arange(3).repeat_interleave(40);
    const auto points = centres.index_select(0, labels_) + torch::randn({120, 16});
    input_ = dir_ / "states.safetensors";
    superpose::save_safetensors(input_, {{"states", points}, {"cube", torch::zeros({2, 2, 2})}});
  }

  std::vector<std::string> args(const fs::path& out, std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"tsne", "--input", input_.string(), "--tensor", "states", "--out", out.string(),
                                  "--perplexity", "10", "--iterations", "400", "--quiet"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  fs::path input_;
  torch::Tensor labels_;
};

std::vector<std::vector<double>> read_csv(const fs::path& file) {
  std::vector<std::vector<double>> rows;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    std::vector<double> row;
    std::istringstream cells(line);
    for (std::string cell; std::getline(cells, cell, ',');) row.push_back(std::stod(cell));
    rows.push_back(row);
  }
  return rows;
}

TEST_F(TsneCli, WritesOneRowPerPointAndKeepsClustersApart) {
  const fs::path out = dir_ / "map.csv";
  const auto r = run(args(out, {"--json"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto report = nlohmann::json::parse(r.out);
  EXPECT_EQ(report["points"], 120);
  EXPECT_EQ(report["iterations"], 400);
  EXPECT_EQ(report["method"], "exact");
  EXPECT_GT(report["kl_divergence"].get<double>(), 0.0);
  EXPECT_LT(report["kl_divergence"].get<double>(), 2.0);
  const auto rows = read_csv(out);
  ASSERT_EQ(rows.size(), 120u);
  // Nearest neighbour in the map from the same blob, for every point.
  auto map = torch::empty({120, 2}, torch::kFloat64);
  for (int64_t i = 0; i < 120; ++i) {
    ASSERT_EQ(rows[static_cast<size_t>(i)].size(), 2u);
    map[i][0] = rows[static_cast<size_t>(i)][0];
    map[i][1] = rows[static_cast<size_t>(i)][1];
  }
  auto d = torch::cdist(map, map);
  d.fill_diagonal_(INFINITY);
  EXPECT_TRUE(labels_.index_select(0, d.argmin(1)).eq(labels_).all().item<bool>());

  // The same seed gives the same file; three dimensions give three columns.
  const fs::path again = dir_ / "again.csv";
  ASSERT_EQ(run(args(again)).exit_code, 0);
  EXPECT_EQ(superpose::testing::slurp(again), superpose::testing::slurp(out));
  const fs::path cube = dir_ / "map3.csv";
  ASSERT_EQ(run(args(cube, {"--dims", "3"})).exit_code, 0);
  EXPECT_EQ(read_csv(cube)[0].size(), 3u);
}

TEST_F(TsneCli, BadInputsFailWithOneLine) {
  const fs::path out = dir_ / "map.csv";
  auto perplexity = args(out);
  perplexity[8] = "500";  // the value after --perplexity
  expect_clean_failure(perplexity, {"--perplexity", "120 points"}, out);
  expect_clean_failure(args(out, {"--dims", "4"}), {"--dims", "2 or 3"}, out);
  expect_clean_failure(args(out, {"--method", "barnes"}), {"--method", "'barnes'"}, out);
  expect_clean_failure(args(out, {"--device", "cuda:7"}), {"--device", "CUDA"}, out);
  auto wrong_tensor = args(out);
  wrong_tensor[4] = "nothing";
  expect_clean_failure(wrong_tensor, {"states.safetensors", "nothing"}, out);
  auto cube = args(out);
  cube[4] = "cube";
  expect_clean_failure(cube, {"--tensor", "'cube'", "[2, 2, 2]"}, out);
  const fs::path garbled = dir_ / "garbled.safetensors";
  superpose::write_file_atomic(garbled, "not a safetensors file at all");
  auto bad_file = args(out);
  bad_file[2] = garbled.string();
  expect_clean_failure(bad_file, {"garbled.safetensors"}, out);
  expect_clean_failure(args(dir_ / "no" / "such" / "dir.csv"), {"dir.csv"});
}

}  // namespace
