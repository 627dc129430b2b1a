// The shipped default models: they load, and `superpose eval` on the shipped
// validation sample reproduces the tables of assets/models/MODEL_CARD.md.
// Skips, saying so, where assets/models holds no trained models.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/cli_runner.h"

namespace fs = std::filesystem;

namespace {

// SUPERPOSE_TEST_ASSETS may point at another assets folder (one that
// scripts/train-default's card stage wrote elsewhere, say).
const fs::path kAssets = std::getenv("SUPERPOSE_TEST_ASSETS") != nullptr ? std::getenv("SUPERPOSE_TEST_ASSETS")
                                                                          : SUPERPOSE_ASSETS;

struct CardRow {
  double ppl, acc;
};

// The rows of the table between "<!-- eval NAME -->" and "<!-- end -->":
// (model, domain) -> perplexity and accuracy as printed.
std::map<std::pair<std::string, std::string>, CardRow> card_table(const std::string& card, const std::string& name) {
  const std::string open = "<!-- eval " + name + " -->";
  const auto begin = card.find(open);
  const auto end = card.find("<!-- end -->", begin);
  std::map<std::pair<std::string, std::string>, CardRow> rows;
  if (begin == std::string::npos || end == std::string::npos) return rows;
  std::istringstream lines(card.substr(begin, end - begin));
  // | model | domain | ppl [lo, hi] | acc | JSD | cosine | MSE |
  const std::regex row(R"(^\| ([a-z0-9-]+) \| ([^ |]+) \| ([0-9.]+) \[[^\]]*\] \| ([0-9.]+) \|)");
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_search(line, m, row)) rows[{m[1], m[2]}] = {std::stod(m[3]), std::stod(m[4])};
  }
  return rows;
}

class DefaultModels : public superpose::testing::CliTest {};

TEST_F(DefaultModels, EvalReproducesTheModelCard) {
  const fs::path card_file = kAssets / "models" / "MODEL_CARD.md";
  if (!fs::exists(card_file)) GTEST_SKIP() << card_file << " is missing: no trained default models in this tree";
  const std::string card = superpose::testing::slurp(card_file);
  const std::string data = (kAssets / "data" / "validation.jsonl").string();
  // The experts and the 1D superposition, then the 2D one alone (its expert
  // rows are the same models on the same data): the rows a reader compares
  // first, at a fraction of the cost of all eight models on a CPU.
  const std::vector<std::pair<std::string, std::string>> runs = {{"superposition-1d", "base,fine,superposition"},
                                                                 {"superposition-2d", "superposition"}};
  for (const auto& [name, models] : runs) {
    SCOPED_TRACE(name);
    const auto expected = card_table(card, name);
    ASSERT_GE(expected.size(), 16u) << "the card's table for " << name << " is missing or short";
    const auto r = run({"eval", "--superposition", (kAssets / "models" / name).string(), "--data", data, "--json",
                        "--device", "cpu", "--models", models});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto report = nlohmann::json::parse(r.out);
    EXPECT_TRUE(report["causal"].get<bool>());
    size_t matched = 0;
    for (const auto& row : report["rows"]) {
      const auto it = expected.find({row["model"].get<std::string>(), row["domain"].get<std::string>()});
      if (it == expected.end()) continue;
      ++matched;
      SCOPED_TRACE(it->first.first + " / " + it->first.second);
      // The card may come from a GPU (other summation orders, TF32): the
      // perplexities agree to 0.5% and accuracy to half a point, well beyond
      // the card's printed rounding.
      EXPECT_NEAR(row["ppl"].get<double>(), it->second.ppl, 0.005 * it->second.ppl);
      EXPECT_NEAR(row["acc"].get<double>(), it->second.acc, 0.005);
    }
    EXPECT_EQ(matched, 2 * static_cast<size_t>(std::count(models.begin(), models.end(), ',') + 1))
        << models << " on both domains";
  }
}

}  // namespace
