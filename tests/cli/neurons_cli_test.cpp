// superpose neurons, run as a user would on a capture of the tiny pair: the
// table in every format, a neuron's top contexts, and bad inputs.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/file_util.h"
#include "model/model_dir.h"
#include "tests/support/cli_runner.h"
#include "tests/support/tiny_superposition.h"

namespace fs = std::filesystem;

namespace {

using superpose::testing::slurp;

const char* kData =
    "{\"text\": \"The cat sat on the mat and looked at the door.\", \"label\": 0, \"domain\": \"en\", \"source\": \"e1\"}\n"
    "{\"text\": \"A dog barked twice at the moon over the hill.\", \"label\": 0, \"domain\": \"en\", \"source\": \"e2\"}\n"
    "{\"text\": \"Le chat dort sur le tapis de la porte.\", \"label\": 1, \"domain\": \"fr\", \"source\": \"f1\"}\n"
    "{\"text\": \"Il pleut sur la ville depuis ce matin.\", \"label\": 1, \"domain\": \"fr\", \"source\": \"f2\"}\n";

class NeuronsCli : public superpose::testing::CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    const auto data = (dir_ / "data.jsonl").string();
    superpose::write_file_atomic(data, kData);
    const auto sp = superpose::testing::save_tiny_superposition(dir_ / "tiny.sp");
    capture_ = (dir_ / "all.safetensors").string();
    mean_ = (dir_ / "mean.safetensors").string();
    ASSERT_EQ(run({"capture", "--superposition", sp, "--data", data, "--out", capture_, "--mlp-layers", "1",
                   "--device", "cpu"}).exit_code, 0);
    ASSERT_EQ(run({"capture", "--superposition", sp, "--data", data, "--out", mean_, "--positions", "mean",
                   "--device", "cpu"}).exit_code, 0);
  }
  std::string capture_, mean_;
};

TEST_F(NeuronsCli, TablesAgreeAcrossFormats) {
  const auto csv = dir_ / "n.csv";
  const auto r = run({"neurons", "--input", capture_, "--json", "--csv", csv.string(), "--device", "cpu"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto json = nlohmann::json::parse(r.out);
  ASSERT_EQ(json["rows"].size(), 9u);  // 3 models × states 0..2
  const std::string table = slurp(csv);
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 10);
  for (const auto& row : json["rows"]) {
    EXPECT_GE(row["polysemantic_share"].get<double>(), 0.0);
    EXPECT_LE(row["polysemantic_share"].get<double>(), 1.0);
    EXPECT_GE(row["diversity"].get<double>(), 0.0);
    EXPECT_LE(row["diversity"].get<double>(), std::log(5.0) + 1e-9);
  }
  const auto mlp = run({"neurons", "--input", capture_, "--site", "mlp", "--device", "cpu"});
  ASSERT_EQ(mlp.exit_code, 0) << mlp.err;
  EXPECT_NE(mlp.out.find("| superposition/fine | 1 | 52 |"), std::string::npos) << mlp.out;
  // A mean capture has no token contexts: the table comes without diversity.
  const auto mean = run({"neurons", "--input", mean_, "--device", "cpu"});
  ASSERT_EQ(mean.exit_code, 0) << mean.err;
  EXPECT_NE(mean.out.find("n/a |"), std::string::npos);
}

TEST_F(NeuronsCli, TopContextsAreTheHighestActivationsWithTheirToken) {
  const auto r = run({"neurons", "--input", capture_, "--neuron", "3", "--layer", "2", "--model", "base", "--top", "5",
                      "--json", "--tokenizer", superpose::default_tokenizer_dir().string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto json = nlohmann::json::parse(r.out);
  const auto& contexts = json["contexts"];
  ASSERT_EQ(contexts.size(), 5u);
  for (size_t i = 1; i < contexts.size(); ++i) {
    EXPECT_GE(contexts[i - 1]["activation"].get<double>(), contexts[i]["activation"].get<double>());
  }
  for (const auto& c : contexts) {
    EXPECT_FALSE(c["token"].get<std::string>().empty());
    const std::string source = c["source"];
    EXPECT_TRUE(source == "e1" || source == "e2" || source == "f1" || source == "f2") << source;
  }
}

TEST_F(NeuronsCli, BadArgumentsFailCleanly) {
  expect_clean_failure({"neurons", "--input", capture_, "--site", "attention"}, {"--site", "'attention'"});
  expect_clean_failure({"neurons", "--input", capture_, "--neuron", "99", "--layer", "1", "--model", "base"},
                       {"--neuron", "99 is outside 0..19"});
  expect_clean_failure({"neurons", "--input", capture_, "--neuron", "1", "--model", "base"}, {"--layer"});
  expect_clean_failure({"neurons", "--input", capture_, "--neuron", "1", "--layer", "1", "--model", "merged"},
                       {"merged.residual.1", "not in the capture"});
  expect_clean_failure({"neurons", "--input", mean_, "--neuron", "1", "--layer", "1", "--model", "base"},
                       {"--neuron", "every token", "'mean'"});
  expect_clean_failure({"neurons", "--input", capture_, "--site", "mlp", "--no-diversity", "--csv",
                        (dir_ / "none" / "x.csv").string()}, {"--csv"});
  const auto plain = dir_ / "plain.safetensors";
  superpose::write_file_atomic(plain, "not a safetensors file at all");
  expect_clean_failure({"neurons", "--input", plain.string()}, {"plain.safetensors"});
}

}  // namespace
