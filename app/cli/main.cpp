// superpose: command line for superposed GPT-2 models. Errors print one line and exit non-zero.
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>

#include "model/device.h"
#include "app/cli/common.h"
#include "model/errors.h"

namespace {

// First line of a message: LibTorch errors carry a C++ stack after it.
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

int main(int argc, char** argv) {
  superpose::tune_cpu_allocator();
  CLI::App app{"superpose: run, trace and inspect (superposed) GPT-2 models", "superpose"};
  app.require_subcommand(1);
  // One line per error, like every other failure of the program.
  app.failure_message([](const CLI::App*, const CLI::Error& e) { return "superpose: " + std::string(e.what()) + "\n"; });
  app.set_version_flag("--version", "superpose 0.1.0");
  superpose::cli::register_info(app);
  superpose::cli::register_tokenize(app);
  superpose::cli::register_trace(app);
  superpose::cli::register_generate(app);
  superpose::cli::register_import_seed(app);
  superpose::cli::register_audit(app);
  superpose::cli::register_merge(app);
  superpose::cli::register_pretrain(app);
  superpose::cli::register_finetune(app);
  superpose::cli::register_train(app);
  superpose::cli::register_eval(app);
  superpose::cli::register_tsne(app);
  superpose::cli::register_capture(app);
  superpose::cli::register_neurons(app);
#ifdef SUPERPOSE_HAVE_FIGURES
  superpose::cli::register_figures(app);
#endif
#ifdef SUPERPOSE_WITH_CORPUS
  superpose::cli::register_corpus(app);
#endif
  superpose::cli::register_train_tokenizer(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const superpose::cli::ExitStatus& status) {
    return status.code;
  } catch (const superpose::Error& e) {
    std::cerr << "superpose: " << first_line(e.what()) << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "superpose: " << first_line(e.what_without_backtrace()) << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "superpose: " << first_line(e.what()) << "\n";
    return 2;
  }
  return 0;
}
