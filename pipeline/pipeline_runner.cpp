// run_pipeline: checks, then runs each selected step and records it.
#include "pipeline/pipeline.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "compress/report.h"
#include "runtime/checkpoint.h"
#include "pipeline/measure.h"
#include "pipeline/pipeline_config.h"
#include "pipeline/pipeline_plan.h"
#include "pipeline/pipeline_steps.h"
#include "report/report_html.h"
#include "pipeline/run_report.h"
#include "pipeline/run_state.h"
#include "pipeline/scratch_baseline.h"
#include "util/error.h"
#include "util/format.h"
#include "util/fs.h"
#include "util/resources.h"
#include "util/sha256.h"

namespace openba {
namespace fs = std::filesystem;
namespace {

// One pipeline process per run directory at a time.
class RunLock {
 public:
  explicit RunLock(const std::string& run_dir) {
    const std::string path = (fs::path(run_dir) / ".pipeline.lock").string();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error(path + ": cannot create the run's lock file");
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      throw Error(run_dir + ": another openba-compress --pipeline is running in this directory");
    }
  }
  ~RunLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  int fd_ = -1;
};

bool is_run_file(const std::string& name) {
  return name == ".pipeline.lock" || name == "pipeline-state.json" || name == "report.json" ||
         name == "report.html" || name == "pipeline.yaml" || name[0] == '.';
}

// Index (0-based) of the step a --from/--until names; `none` when not given.
size_t step_position(const PipelineConfig& p, const std::string& which, const std::string& flag, size_t none) {
  return which.empty() ? none : static_cast<size_t>(find_step(p, which, flag).index - 1);
}

}  // namespace

int run_pipeline(const PipelineRun& run) {
  Stopwatch clock;
  // Everything checkable is checked before a step runs.
  const PipelineConfig p = load_pipeline(run.file);
  const std::vector<ModelConfig> shapes = plan_pipeline(p);
  for (const auto& s : p.steps) {
    if (s.kind == StepKind::kVocab && !fs::is_regular_file(run.tokenize_tool)) {
      throw Error(s.where + ": step " + s.id + " checks the pruned tokenizer with openba-tokenize, not found at " +
                  run.tokenize_tool + " (--tokenize-tool)");
    }
  }
  const size_t from = step_position(p, run.from, "--from", SIZE_MAX);
  const size_t until = step_position(p, run.until, "--until", p.steps.size() - 1);
  if (from != SIZE_MAX && from > until) throw Error("--from " + run.from + " comes after --until " + run.until);
  if (path_is_same_or_inside(p.model, run.run_dir) || path_is_same_or_inside(run.run_dir, p.model)) {
    throw Error("--out " + run.run_dir + ": the run directory and the input model " + p.model + " must not contain each other");
  }
  for (const auto& data : {p.data.train, p.data.heldout}) {
    if (!data.empty() && path_is_same_or_inside(data, run.run_dir)) {
      throw Error("--out " + run.run_dir + ": the run directory must not contain the data " + data);
    }
  }

  // The chain of step options, from the input model on.
  std::vector<std::string> chains;
  std::string chain = sha256_hex("openba-pipeline\n" + p.name + "\n" + fs::weakly_canonical(p.model).string());
  for (const auto& s : p.steps) {
    chain = chain_hash(chain, s.spec);
    chains.push_back(chain);
  }

  const std::string state_path = (fs::path(run.run_dir) / "pipeline-state.json").string();
  RunState state;
  if (fs::exists(run.run_dir) && !fs::is_directory(run.run_dir)) throw Error("--out " + run.run_dir + ": not a directory");
  if (fs::exists(state_path)) {
    state = RunState::load(state_path);
    if (state.name != p.name) {
      throw Error("--out " + run.run_dir + " holds the run of another pipeline ('" + state.name + "' from " + state.file +
                  "), not '" + p.name + "' from " + p.file + "; choose another --out");
    }
  } else if (fs::is_directory(run.run_dir)) {
    for (const auto& entry : fs::directory_iterator(run.run_dir)) {
      if (!is_run_file(entry.path().filename().string())) {
        throw Error("--out " + run.run_dir + ": not empty and not a pipeline run (no pipeline-state.json; found " +
                    entry.path().filename().string() + "); choose another --out");
      }
    }
  }
  // Recorded steps must match this file's options, up to where --from starts again.
  for (size_t i = 0; i < state.steps.size() && i < p.steps.size() && i < from; ++i) {
    const StepRecord& rec = state.steps[i];
    if (rec.id != p.steps[i].id || rec.chain != chains[i]) {
      const std::string why = rec.id != p.steps[i].id ? "it was step " + rec.id + ", now " + p.steps[i].id
                                                      : spec_difference(rec.spec, p.steps[i].spec);
      throw Error("--out " + run.run_dir + ": step " + p.steps[i].id + " of this run was made with other options (" + why +
                  "); run with --from " + std::to_string(i + 1) + " to redo it and the steps after it, or choose another --out");
    }
  }
  // The first step to run: the first not done, or --from.
  size_t start = 0;
  while (start < p.steps.size() && start < state.steps.size() && state.steps[start].status == "done" &&
         fs::exists(state.steps[start].entry.value("output", std::string()))) {
    ++start;
  }
  if (from != SIZE_MAX) {
    if (from > start) {
      throw Error("--from " + run.from + ": step " + p.steps[start].id + " before it is not done yet; run without --from");
    }
    start = from;
  }
  fs::create_directories(run.run_dir);
  RunLock lock(run.run_dir);
  // A step started under the same options (interrupted) resumes; later records are stale.
  const bool resume_start = start < state.steps.size() && start < p.steps.size() && state.steps[start].status == "started" &&
                            state.steps[start].chain == chains[start] && from == SIZE_MAX;
  state.truncate(start);
  if (start < p.steps.size()) state.baselines.clear();  // they compare with the steps' results
  state.name = p.name;
  state.file = p.file;
  state.model = p.model;
  state.save(state_path);
  const std::string copy = (fs::path(run.run_dir) / "pipeline.yaml").string();
  StagingDir::write_file_atomically(copy, read_text_file(p.file));  // the file this run follows, for the record

  HeldoutSet heldout(p, run.quiet);
  const Checkpoint in = Checkpoint::open(p.model);
  const int64_t input_parameters = parameters_json(in.config(), in.lm_head_is_tied())["total"].get<int64_t>();
  auto heldout_json = [&]() { return heldout.enabled() ? heldout.describe() : nlohmann::ordered_json(); };

  // `measure:`: the input model and the steps done earlier when their
  // measurement was made under other options (or none), then every step as
  // it finishes. Without it, no figure of an earlier measure: stays.
  const int64_t task_vocab = in.config().vocab_size;
  const nlohmann::ordered_json measure_spec = p.measure.enabled() ? p.measure.spec() : nlohmann::ordered_json();
  auto measured_under = [&](const nlohmann::ordered_json& m) {
    return m.is_object() && m.contains("options") && m["options"] == measure_spec;
  };
  if (!p.measure.enabled()) {
    state.input_measured = nullptr;
    for (auto& rec : state.steps) rec.entry.erase("measured");
  } else {
    if (!measured_under(state.input_measured)) {
      std::printf("== measure: the input model %s\n", p.model.c_str());
      std::fflush(stdout);
      state.input_measured = measure_checkpoint(p.model, p.measure, task_vocab, run.quiet, "input");
    }
    for (size_t i = 0; i < start; ++i) {
      auto& e = state.steps[i].entry;
      if (measured_under(e.value("measured", nlohmann::ordered_json()))) continue;
      std::printf("== measure: %s (done earlier)\n", state.steps[i].id.c_str());
      std::fflush(stdout);
      e["measured"] = measure_checkpoint(e["output"].get<std::string>(), p.measure, task_vocab, run.quiet, state.steps[i].id);
    }
  }
  state.save(state_path);

  // The input of the step at position i: the previous model-producing step's output.
  StepInput input{p.model, nlohmann::ordered_json()};
  for (size_t i = 0; i < start; ++i) {
    const auto& e = state.steps[i].entry;
    input.dir = e["output"].get<std::string>();
    input.heldout = e["heldout_after"].is_null()
                        ? nlohmann::ordered_json()
                        : nlohmann::ordered_json{{"loss", e["heldout_after"]}, {"by_denoiser", e["heldout_after_by_denoiser"]}};
  }

  for (size_t i = 0; i < p.steps.size(); ++i) {
    const PipelineStep& s = p.steps[i];
    if (i < start) {
      if (i <= until) std::printf("== %s (%s): done earlier, skipped\n", s.id.c_str(), step_kind_name(s.kind));
      continue;
    }
    if (i > until) break;
    std::printf("== step %d/%zu: %s (%s) on %s\n", s.index, p.steps.size(), s.id.c_str(), step_kind_name(s.kind), input.dir.c_str());
    std::fflush(stdout);
    StepRecord rec;
    rec.id = s.id;
    rec.kind = step_kind_name(s.kind);
    rec.chain = chains[i];
    rec.spec = s.spec;
    rec.status = "started";
    state.put(rec);
    state.save(state_path);
    Stopwatch step_clock;
    StepOutcome outcome;
    if (s.distill.enabled()) {
      const std::string& t = s.distill.teacher;
      input.teacher = t == "input" ? p.model
                      : s.distill.teacher_step >= 0
                          ? state.steps.at(static_cast<size_t>(s.distill.teacher_step)).entry.at("output").get<std::string>()
                          : t;
    }
    if (s.kind == StepKind::kPretrain) {
      outcome = run_pretrain_step(run, p, s, input, i == start && resume_start, heldout);
    } else if (s.kind == StepKind::kEval) {
      outcome = run_eval_step(run, s, input, heldout);
    } else {
      outcome = run_compress_step(run, s, input);
    }
    const double seconds = step_clock.seconds();
    rec.status = "done";
    rec.entry = done_step_entry(s, input.dir, outcome, seconds, run.run_dir, input_parameters);
    if (p.measure.enabled()) rec.entry["measured"] = measure_checkpoint(outcome.output, p.measure, task_vocab, run.quiet, s.id);
    state.put(rec);
    state.save(state_path);
    write_run_report(p, shapes, state, run.run_dir, heldout_json());
    char loss[64] = "";
    if (outcome.heldout_after.is_object()) {
      std::snprintf(loss, sizeof(loss), ", held-out loss %.4f", outcome.heldout_after["loss"].get<double>());
    }
    std::printf("== %s: done in %s%s\n", s.id.c_str(), human_duration(seconds).c_str(), loss);
    std::fflush(stdout);
    input.dir = outcome.output;
    input.heldout = outcome.heldout_after;
    input.teacher.clear();
  }
  if (p.scratch.enabled() && until == p.steps.size() - 1) {
    run_scratch_baseline(run, p, chains.back(), state, state_path, heldout);
  }
  const nlohmann::ordered_json report = write_run_report(p, shapes, state, run.run_dir, heldout_json());
  std::printf("\n%s", pipeline_table(report).c_str());
  std::printf("this invocation: %s\n", human_duration(clock.seconds()).c_str());
  std::printf("report: %s\n", (fs::path(run.run_dir) / "report.html").string().c_str());
  return 0;
}

}  // namespace openba
