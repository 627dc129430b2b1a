// Worker thread: model files are read here, never on the UI thread.
#include "app/studio/worker.h"

#include "model/errors.h"
#include "model/gpt2.h"
#include "model/model_dir.h"
#include "model/safetensors.h"

namespace superpose::studio {

Worker::Worker() : snapshot_(std::make_shared<Snapshot>()), thread_([this] { run(); }) {}

Worker::~Worker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    commands_.clear();
  }
  wake_.notify_all();
  thread_.join();
}

std::shared_ptr<const Snapshot> Worker::snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return snapshot_;
}

void Worker::publish(std::shared_ptr<const Snapshot> snapshot) {
  std::lock_guard<std::mutex> lock(mutex_);
  snapshot_ = std::move(snapshot);
}

void Worker::run() {
  for (;;) {
    std::function<void()> command;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !commands_.empty(); });
      if (stopping_) return;
      command = std::move(commands_.front());
      commands_.pop_front();
    }
    command();
    pending_.fetch_sub(1);
  }
}

void Worker::load_model(const std::filesystem::path& dir) {
  pending_.fetch_add(1);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    commands_.push_back([this, dir] {
      auto loading = std::make_shared<Snapshot>(*snapshot());
      loading->status = Snapshot::Status::kLoading;
      loading->model_dir = dir.string();
      publish(loading);
      auto next = std::make_shared<Snapshot>();
      next->model_dir = dir.string();
      try {
        const ModelFiles files = locate_model(dir);
        next->config = load_gpt2_config(files.config);
        const SafetensorsFile weights(files.weights);
        match_gpt2_tensors(weights, next->config);
        next->parameters = gpt2_parameter_count(next->config);
        for (const auto& t : weights.tensors()) next->tensors.push_back({t.name, t.dtype, t.shape, t.end - t.begin});
        try {
          next->tokenizer_dir = resolve_tokenizer_dir(std::nullopt, dir).string();
        } catch (const Error&) {
          next->tokenizer_dir.clear();
        }
        next->status = Snapshot::Status::kReady;
      } catch (const std::exception& e) {
        next->status = Snapshot::Status::kFailed;
        next->message = e.what();
      }
      publish(next);
    });
  }
  wake_.notify_one();
}

}  // namespace superpose::studio
