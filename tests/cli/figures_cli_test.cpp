// superpose figures, run as a user would on the tiny pair: every figure is
// written in every asked format with its data, and bad inputs fail cleanly.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "model/file_util.h"
#include "tests/support/cli_runner.h"
#include "tests/support/tiny_superposition.h"

namespace fs = std::filesystem;

namespace {

using superpose::testing::slurp;

const char* kData =
    "{\"text\": \"The cat sat on the mat and looked at the door.\", \"label\": 0, \"domain\": \"en\"}\n"
    "{\"text\": \"A dog barked twice at the moon over the hill.\", \"label\": 0, \"domain\": \"en\"}\n"
    "{\"text\": \"Le chat dort sur le tapis pr\\u00e8s de la porte.\", \"label\": 1, \"domain\": \"fr\"}\n"
    "{\"text\": \"Il pleut sur la ville depuis ce matin.\", \"label\": 1, \"domain\": \"fr\"}\n";

class FiguresCli : public superpose::testing::CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    data_ = (dir_ / "data.jsonl").string();
    superpose::write_file_atomic(data_, kData);
    sp_ = superpose::testing::save_tiny_superposition(dir_ / "tiny.sp");
  }
  std::vector<std::string> figures(const std::string& out, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"figures", "--superposition", sp_, "--data", data_, "--out", out,
                                     "--device", "cpu", "--tsne-iterations", "300", "--quiet"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  std::string data_, sp_;
};

TEST_F(FiguresCli, WritesEveryFigureWithItsData) {
  const auto out = dir_ / "figs";
  const auto r = run(figures(out.string(), {}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const std::string name : {"perplexity", "l2-distances", "trajectories", "tsne-state-1", "tsne-state-2",
                                 "neurons", "neuron-map-difference"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(slurp(out / (name + ".pdf")).substr(0, 5), "%PDF-");
    EXPECT_EQ(slurp(out / (name + ".png")).substr(1, 3), "PNG");
    EXPECT_NE(slurp(out / (name + ".svg")).find("<svg"), std::string::npos);
    EXPECT_EQ(slurp(out / (name + ".csv")).substr(0, 35), "panel,series,x,y,lo,hi,category,val");
    EXPECT_EQ(slurp(out / (name + ".json")).front(), '{');
  }
  // The perplexity data names every model of the evaluation.
  const std::string csv = slurp(out / "perplexity.csv");
  for (const char* model : {"base", "fine", "superposition-a1", "linear", "task-arithmetic", "alpha-hard"}) {
    EXPECT_NE(csv.find(std::string(",") + model + ","), std::string::npos) << model;
  }
  // Residual states 0..L-1 of three models in the neuron table.
  const std::string neurons = slurp(out / "neuron-table.csv");
  EXPECT_EQ(std::count(neurons.begin(), neurons.end(), '\n'), 1 + 3 * 3);
  EXPECT_NE(slurp(out / "neuron-table.md").find("| superposition | 2 | 20 |"), std::string::npos);
  EXPECT_NE(slurp(out / "eval.md").find("superposition"), std::string::npos);
  EXPECT_NE(slurp(out / "index.md").find("- trajectories"), std::string::npos);
}

TEST_F(FiguresCli, FormatsAndTsneCanBeChosen) {
  const auto out = dir_ / "pdf-only";
  ASSERT_EQ(run(figures(out.string(), {"--formats", "pdf", "--tsne-points", "0"})).exit_code, 0);
  EXPECT_TRUE(fs::exists(out / "perplexity.pdf"));
  EXPECT_FALSE(fs::exists(out / "perplexity.png"));
  EXPECT_FALSE(fs::exists(out / "tsne-state-1.pdf"));
}

TEST_F(FiguresCli, BadArgumentsFailCleanly) {
  const auto out = (dir_ / "never").string();
  expect_clean_failure(figures(out, {"--formats", "pdf,jpg"}), {"--formats", "'jpg'"});
  expect_clean_failure(figures(out, {"--tsne-layers", "7"}), {"--tsne-layers", "state 7", "0..3"});
  expect_clean_failure(figures(out, {"--alpha", "-1"}), {"--alpha", "outside [0, 1]"});
  EXPECT_FALSE(fs::exists(out));
  expect_clean_failure(figures(data_, {}), {"--out", "data.jsonl: is not a directory"});
  expect_clean_failure(figures((dir_ / "a" / "b").string(), {}), {"--out", "cannot create"});
}

}  // namespace
