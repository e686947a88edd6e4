// openba-compress --pipeline FILE --out RUN_DIR: runs the steps of a
// pipeline file (pipeline_config.h) in order, each into RUN_DIR/NN-name/,
// and keeps RUN_DIR/report.json and report.html up to date after every step.
//
// Re-running the same command skips the steps already done and resumes an
// interrupted pretrain step from its last checkpoint. --until STEP stops
// after STEP; --from STEP runs STEP and everything after it again (the
// steps before it must be done). Everything that can be checked is checked
// before the first step runs: the file (unknown kinds and keys with their
// line), every step's shape against the one before it, the data against the
// tokenizer, and that RUN_DIR holds this pipeline's run (same name, same
// options for the steps already done) or nothing.
#pragma once

#include <string>

namespace openba {

struct PipelineRun {
  std::string file;      // the pipeline file
  std::string run_dir;   // RUN_DIR
  std::string until, from;
  bool quiet = false;    // no progress lines
  std::string tools_dir;      // where openba-pretrain is (launcher steps)
  std::string tokenize_tool;  // openba-tokenize (vocab steps)
  std::string command_line;
};

// Returns the exit code (0 when every selected step is done).
int run_pipeline(const PipelineRun& run);

}  // namespace openba
