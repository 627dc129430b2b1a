// Sessions without a window: JSON round trips, strict reading with one-line
// messages that name the file and key, and the α undo/redo history.
#include <fstream>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "app/studio/session.h"
#include "model/errors.h"
#include "tests/support/temp_dir.h"

namespace superpose::studio {
namespace {

Session full_session() {
  Session s;
  s.superposition_dir = "/models/superposition-2d";
  s.base_dir = "/models/base";
  s.fine_dir = "/models/fine";
  s.device = "cpu";
  s.alpha = std::vector<float>{0.0f, 0.25f, 0.5f, 1.0f};
  s.autoencoders = std::vector<bool>{true, false, true, false};
  s.prompt = "Once upon a time\n\"quoted\" α";
  s.settings.max_new_tokens = 17;
  s.settings.temperature = 0.7;
  s.settings.top_k = 40;
  s.settings.top_p = 0.9;
  s.settings.seed = 1234;
  s.settings.greedy = true;
  s.settings.stop_at_eos = false;
  s.colour_by_expert = true;
  s.panels.generate = false;
  s.panels.tensors = true;
  s.panels.tsne = true;
  s.panels.neurons = true;
  s.tsne.layers = {3, 7};
  s.tsne_colour = TsneColour::kLayer;
  s.tsne.fine = false;
  s.tsne.max_documents = 7;
  s.tsne.data = "/data/held-out.jsonl";
  s.tsne.perplexity = 12.5;
  s.tsne.iterations = 250;
  s.neurons.max_documents = 9;
  s.neurons.data = "/data/other.jsonl";
  s.neurons.diversity = true;
  s.panels.trajectories = true;
  s.panels.metrics = true;
  s.trajectories.max_documents = 5;
  s.trajectories.data = "/data/trajectories.jsonl";
  s.trajectories.fine = false;
  s.follow_alpha = false;
  s.metrics.max_documents = 11;
  s.metrics.data = "/data/eval.jsonl";
  s.metrics.models = "base,superposition";
  s.schedule.use = true;
  s.schedule.segments = {ScheduleSegment{0, {0.25f}}, ScheduleSegment{5, {0.1f, 0.2f, 0.3f}}};
  return s;
}

std::string message_of(const nlohmann::json& j) {
  try {
    session_from_json(j, "s.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Session, RoundTripsThroughJsonAndFiles) {
  const Session s = full_session();
  const nlohmann::json j = session_to_json(s);
  EXPECT_EQ(session_from_json(j), s);
  EXPECT_EQ(session_to_json(session_from_json(j)), j);

  superpose::testing::TempDir temp;
  save_session(s, temp / "session.json");
  EXPECT_EQ(load_session(temp / "session.json"), s);

  Session defaults;  // learned α, checkpoint switches: null in the file
  const nlohmann::json d = session_to_json(defaults);
  EXPECT_TRUE(d["alpha"].is_null());
  EXPECT_EQ(session_from_json(d), defaults);
  EXPECT_EQ(session_from_json(nlohmann::json::object()), defaults);  // missing keys: defaults
}

TEST(Session, CapturesWhatIsInForce) {
  AppState state;
  state.superposition_dir = "/sup";
  state.prompt = "hi";
  state.settings.pause_after = 3;  // a stepping detail, not saved
  state.colour_by_expert = true;
  Snapshot snapshot;
  SuperpositionInfo info;
  info.alpha_learned = {0.5f, 0.5f};
  info.alpha_in_force = {0.5f, 0.5f};
  info.has_autoencoder = {true, true};
  info.autoencoder_enabled = {true, true};
  snapshot.superposition = info;
  Session s = capture_session(state, snapshot);
  EXPECT_FALSE(s.alpha.has_value());
  EXPECT_FALSE(s.autoencoders.has_value());
  EXPECT_EQ(s.settings.pause_after, 0);
  info.alpha_in_force = {0.1f, 0.9f};
  info.alpha_overridden = true;
  info.autoencoder_enabled = {false, true};
  snapshot.superposition = info;
  s = capture_session(state, snapshot);
  ASSERT_TRUE(s.alpha.has_value());
  EXPECT_EQ(*s.alpha, info.alpha_in_force);
  ASSERT_TRUE(s.autoencoders.has_value());
  EXPECT_EQ(*s.autoencoders, info.autoencoder_enabled);
  EXPECT_EQ(s.superposition_dir, "/sup");
  EXPECT_EQ(s.prompt, "hi");
  EXPECT_TRUE(s.colour_by_expert);
}

TEST(Session, BadFilesGiveOneClearLine) {
  superpose::testing::TempDir temp;
  try {
    load_session(temp / "missing.json");
    FAIL() << "no error for a missing file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.json: cannot open"), std::string::npos) << e.what();
  }
  {
    std::ofstream(temp / "broken.json") << "{\"prompt\": ";
  }
  try {
    load_session(temp / "broken.json");
    FAIL() << "no error for broken JSON";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("broken.json: not valid JSON"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }

  nlohmann::json j = session_to_json(full_session());
  EXPECT_EQ(message_of(nlohmann::json::array()), "s.json: expected an object, got array");
  j["colour"] = "red";
  EXPECT_EQ(message_of(j), "s.json: unknown key 'colour'");
  j = session_to_json(full_session());
  j["alpha"][1] = 1.5;
  EXPECT_EQ(message_of(j), "s.json.alpha[1]: α value 1.5 is outside [0, 1]");
  j = session_to_json(full_session());
  j["alpha"][2] = "half";
  EXPECT_EQ(message_of(j), "s.json.alpha[2]: expected a number, got \"half\"");
  j = session_to_json(full_session());
  j["sampling"]["top_k"] = 2.5;
  EXPECT_EQ(message_of(j), "s.json.sampling.top_k: expected an integer, got 2.5");
  j = session_to_json(full_session());
  j["sampling"]["top_p"] = 0.0;
  EXPECT_EQ(message_of(j), "s.json.sampling.top_p: must be in (0, 1]");
  j = session_to_json(full_session());
  j["models"]["fine"] = "";
  EXPECT_EQ(message_of(j), "s.json.models: name both 'base' and 'fine', or neither");
  j = session_to_json(full_session());
  j["models"]["device"] = "tpu";
  EXPECT_EQ(message_of(j), "s.json.models.device: expected auto, cpu or cuda[:N], got 'tpu'");
  j = session_to_json(full_session());
  j["panels"]["alpha"] = 1;
  EXPECT_EQ(message_of(j), "s.json.panels.alpha: expected true or false, got 1");
  j = session_to_json(full_session());
  j["generate"]["colour"] = "rainbow";
  EXPECT_EQ(message_of(j), "s.json.generate.colour: expected \"alpha\" or \"expert\", got \"rainbow\"");
  j = session_to_json(full_session());
  j["version"] = 7;
  EXPECT_EQ(message_of(j), "s.json.version: unsupported version 7 (expected 1)");
}

TEST(AlphaHistory, UndoesAndRedoesWholeAlphasWithTheirControlPoints) {
  using Entry = AlphaHistory::Entry;
  AlphaHistory history;
  EXPECT_TRUE(history.take_undo(Entry{{0.5f}, {}}).alpha.empty());
  history.record({0.1f}, {1.0f, 2.0f});  // edit 1: 0.1 -> 0.2
  history.record({0.2f});                // edit 2: 0.2 -> 0.3, no control points
  Entry restored = history.take_undo(Entry{{0.3f}, {3.0f, 4.0f}});
  EXPECT_EQ(restored.alpha, std::vector<float>{0.2f});
  EXPECT_TRUE(restored.control.empty());
  restored = history.take_undo(Entry{{0.2f}, {5.0f, 6.0f}});
  EXPECT_EQ(restored.alpha, std::vector<float>{0.1f});
  EXPECT_EQ(restored.control, (std::vector<float>{1.0f, 2.0f}));
  EXPECT_TRUE(history.take_undo(Entry{{0.1f}, {}}).alpha.empty());
  restored = history.take_redo(Entry{{0.1f}, {}});
  EXPECT_EQ(restored.alpha, std::vector<float>{0.2f});
  EXPECT_EQ(restored.control, (std::vector<float>{5.0f, 6.0f}));  // what was shown when it was undone
  history.record({0.2f});  // a new edit drops what could be redone
  EXPECT_TRUE(history.take_redo(Entry{{0.7f}, {}}).alpha.empty());
  for (size_t i = 0; i < AlphaHistory::kLimit + 10; ++i) history.record({0.0f});
  EXPECT_EQ(history.undo.size(), AlphaHistory::kLimit);
}

TEST(Session, AlphaScheduleIsCheckedWhenRead) {
  nlohmann::json j = session_to_json(full_session());
  EXPECT_TRUE(j["alpha_schedule"]["segments"][0]["alpha"].is_number());  // one value: a global α
  EXPECT_EQ(j["alpha_schedule"]["segments"][1]["alpha"].size(), 3u);
  j["alpha_schedule"]["segments"][1]["from"] = 0;
  EXPECT_NE(message_of(j).find("s.json.alpha_schedule.segments[1].from"), std::string::npos) << message_of(j);
  j = session_to_json(full_session());
  j["alpha_schedule"]["segments"][0]["alpha"] = 1.5;
  EXPECT_NE(message_of(j).find("α value 1.5 is outside [0, 1]"), std::string::npos) << message_of(j);
  j = session_to_json(full_session());
  j["alpha_schedule"]["segments"][0]["colour"] = "red";
  EXPECT_NE(message_of(j).find("unknown key 'colour'"), std::string::npos) << message_of(j);
  j = session_to_json(full_session());
  j["alpha_schedule"]["segments"][0].erase("alpha");
  EXPECT_NE(message_of(j).find("needs 'from' and 'alpha'"), std::string::npos) << message_of(j);
  j = session_to_json(full_session());
  j["alpha_schedule"]["use"] = 1;
  EXPECT_NE(message_of(j).find("s.json.alpha_schedule.use"), std::string::npos) << message_of(j);
}

TEST(Session, ReadsAOneStateTsneSettingAsAListOfOne) {
  nlohmann::json j = session_to_json(full_session());
  j["tsne"].erase("layers");
  j["tsne"].erase("colour");
  j["tsne"]["layer"] = 5;
  const Session s = session_from_json(j, "s.json");
  EXPECT_EQ(s.tsne.layers, std::vector<int64_t>{5});
  EXPECT_EQ(s.tsne_colour, TsneColour::kModelDomain);
  EXPECT_EQ(session_to_json(s)["tsne"]["layers"], nlohmann::json::array({5}));
}

TEST(Session, AnalysisPanelSettingsAreCheckedWhenRead) {
  nlohmann::json j = session_to_json(full_session());
  j["tsne"]["iterations"] = 0;
  EXPECT_NE(message_of(j).find("s.json.tsne.iterations"), std::string::npos) << message_of(j);
  j = session_to_json(full_session());
  j["tsne"]["palette"] = "red";
  EXPECT_NE(message_of(j).find("unknown key 'palette'"), std::string::npos) << message_of(j);
  j = session_to_json(full_session());
  j["tsne"]["colour"] = "red";
  EXPECT_NE(message_of(j).find("s.json.tsne.colour: expected \"model-domain\""), std::string::npos) << message_of(j);
  const std::pair<nlohmann::json, std::string> bad_layers[] = {
      {nlohmann::json::array(), "s.json.tsne.layers: expected a non-empty array"},
      {6, "s.json.tsne.layers: expected a non-empty array"},
      {{2, -1}, "s.json.tsne.layers: expected state indices >= 0, got -1"},
      {{2, "3"}, "s.json.tsne.layers: expected state indices >= 0, got \"3\""},
      {{4, 4}, "s.json.tsne.layers: state 4 is listed twice"}};
  for (const auto& [layers, message] : bad_layers) {
    j = session_to_json(full_session());
    j["tsne"]["layers"] = layers;
    EXPECT_NE(message_of(j).find(message), std::string::npos) << layers.dump() << ": " << message_of(j);
  }
  j = session_to_json(full_session());
  j["tsne"]["layer"] = 3;
  EXPECT_NE(message_of(j).find("not both"), std::string::npos) << message_of(j);
  j["tsne"].erase("layers");
  j["tsne"]["layer"] = -2;
  EXPECT_NE(message_of(j).find("s.json.tsne.layer: must be >= 0"), std::string::npos) << message_of(j);
  j = session_to_json(full_session());
  j["neurons"]["max_documents"] = -1;
  EXPECT_NE(message_of(j).find("s.json.neurons.max_documents"), std::string::npos) << message_of(j);
  j = session_to_json(full_session());
  j["trajectories"]["max_documents"] = -2;
  EXPECT_NE(message_of(j).find("s.json.trajectories.max_documents"), std::string::npos) << message_of(j);
  j = session_to_json(full_session());
  j["trajectories"]["follow_alpha"] = "yes";
  EXPECT_NE(message_of(j).find("s.json.trajectories.follow_alpha"), std::string::npos) << message_of(j);
  j = session_to_json(full_session());
  j["metrics"]["seq_len"] = 64;
  EXPECT_NE(message_of(j).find("unknown key 'seq_len'"), std::string::npos) << message_of(j);
  j = session_to_json(full_session());
  j["metrics"]["models"] = "";
  EXPECT_NE(message_of(j).find("s.json.metrics.models"), std::string::npos) << message_of(j);
  j = session_to_json(full_session());
  j["panels"]["metrics"] = 0;
  EXPECT_NE(message_of(j).find("s.json.panels.metrics"), std::string::npos) << message_of(j);
  j = session_to_json(full_session());
  j["panels"]["tsne"] = 1;
  EXPECT_NE(message_of(j).find("s.json.panels.tsne"), std::string::npos) << message_of(j);
}

}  // namespace
}  // namespace superpose::studio
