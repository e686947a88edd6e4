// RUN_DIR/pipeline-state.json: which pipeline a run directory belongs to and
// how far it got. Each step is recorded when it starts (so an interrupted
// pretrain step resumes) and again when it is done, with its entry of
// report.json. A step's `chain` hashes its options with those of every step
// before it and the input model: a step counts as done only under the same
// chain, so a changed option never reuses a stale output.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace openba {

struct StepRecord {
  std::string id, kind, chain;
  nlohmann::ordered_json spec;  // the options the chain hashes (shown when they differ)
  std::string status;           // "started" or "done"
  nlohmann::ordered_json entry; // the step's entry of report.json (when done)
};

struct RunState {
  std::string name;  // the pipeline's name
  std::string file;  // the pipeline file that made the run
  std::string model; // the input model
  std::vector<StepRecord> steps;
  // The runs of the baselines (pipeline/scratch_baseline.h), by id; their
  // chains start from the last step's, so they count as done only for the
  // same steps.
  std::vector<StepRecord> baselines;
  // The input model's `measure:` results (pipeline/measure.h); null when none.
  nlohmann::ordered_json input_measured;

  // Reads RUN_DIR/pipeline-state.json; Error naming it when malformed.
  static RunState load(const std::string& path);
  // Written atomically (a temporary file renamed).
  void save(const std::string& path) const;

  const StepRecord* find(const std::string& id) const;
  // Replaces the record with this id, or appends it.
  void put(const StepRecord& record);
  const StepRecord* find_baseline(const std::string& id) const;
  void put_baseline(const StepRecord& record);
  // Forgets the records from position `index` (0-based) on.
  void truncate(size_t index);
};

// The chain hash of a step: SHA-256 over the previous chain and this step's spec.
std::string chain_hash(const std::string& previous, const nlohmann::ordered_json& spec);

// "key: old -> new" for each option that differs (for error messages).
std::string spec_difference(const nlohmann::ordered_json& before, const nlohmann::ordered_json& now);

}  // namespace openba
