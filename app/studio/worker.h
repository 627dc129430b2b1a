// The studio's worker thread: owns models and files, publishes immutable snapshots.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/config.h"

namespace superpose::studio {

// One row of the tensor table.
struct TensorRow {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t bytes = 0;
};

// What the UI draws from. Immutable once published; plain data, no tensors.
struct Snapshot {
  enum class Status { kEmpty, kLoading, kReady, kFailed };
  Status status = Status::kEmpty;
  std::string model_dir;
  std::string message;  // the error line when kFailed
  GPT2Config config;
  int64_t parameters = 0;
  std::string tokenizer_dir;  // empty when none was found
  std::vector<TensorRow> tensors;
};

// Runs commands on its own thread, in order. The UI thread calls the public
// functions; they never block on model work. snapshot() is safe from any thread.
class Worker {
 public:
  Worker();
  ~Worker();  // finishes the command in hand, drops the rest, joins
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Reads and validates an HF GPT-2 directory (config, tensor table, tokenizer).
  void load_model(const std::filesystem::path& dir);
  std::shared_ptr<const Snapshot> snapshot() const;
  // True while a command is queued or running.
  bool busy() const { return pending_.load() > 0; }

 private:
  void run();
  void publish(std::shared_ptr<const Snapshot> snapshot);

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> commands_;
  bool stopping_ = false;
  std::shared_ptr<const Snapshot> snapshot_;
  std::atomic<int> pending_{0};
  std::thread thread_;
};

}  // namespace superpose::studio
