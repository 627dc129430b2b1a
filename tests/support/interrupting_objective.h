// An objective that delegates to another and raises the interrupt flag
// during its `stop_at`-th loss, as Ctrl-C would between two steps.
#pragma once

#include <filesystem>
#include <vector>

#include "model/training.h"

namespace superpose::testing {

class InterruptingObjective : public Objective {
 public:
  InterruptingObjective(Objective& inner, int stop_at) : inner_(inner), stop_at_(stop_at) {}
  std::vector<Group> groups() override { return inner_.groups(); }
  StepLoss loss(const Batch& batch) override {
    if (++calls_ == stop_at_) interrupt_requested().store(true);
    return inner_.loss(batch);
  }
  void train_mode(bool on) override { inner_.train_mode(on); }
  void save(const std::filesystem::path& dir) override { inner_.save(dir); }
  void load(const std::filesystem::path& dir) override { inner_.load(dir); }
  void save_final(const std::filesystem::path& out, const nlohmann::json& provenance) override {
    inner_.save_final(out, provenance);
  }

 private:
  Objective& inner_;
  int stop_at_;
  int calls_ = 0;
};

}  // namespace superpose::testing
