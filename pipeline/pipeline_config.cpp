#include "pipeline/pipeline_config.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>

#include "compress/compress_options.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace openba {
namespace fs = std::filesystem;
namespace {


// Option keys each compression kind accepts (the rest of openba-compress's
// keys are set by the pipeline itself or belong to another kind).
const std::vector<std::string> kCommonCompressKeys = {"calib", "calib-samples", "batch-size", "max-batch-tokens",
                                                      "seed", "score", "save-scores", "scores"};
const std::vector<std::string> kLayerKeys = {"drop-encoder-layers", "drop-decoder-layers", "keep-encoder-layers",
                                             "keep-decoder-layers"};
const std::vector<std::string> kNeuronKeys = {"ffn", "heads", "hidden", "round-to"};
const std::vector<std::string> kVocabKeys = {"vocab", "min-freq", "corpus"};
// Held-out options live in `data:` so that every step is measured on the same examples.
const std::vector<std::string> kSharedDataKeys = {"eval", "eval-samples", "encoder-tokens", "decoder-tokens",
                                                  "data-seed", "heldout-seed"};

// "03-recover": a step's directory under RUN_DIR (index 1-based).
std::string step_id(int index, const std::string& name) {
  char number[16];
  std::snprintf(number, sizeof(number), "%02d-", index);
  return number + name;
}

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

void check_name(const std::string& name, const std::string& where, const std::string& what) {
  if (name.empty() || name.size() > 64) throw Error(where + ": " + what + " must be 1 to 64 characters");
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
      throw Error(where + ": " + what + " '" + name + "' may hold only letters, digits, '-', '_' and '.'");
    }
  }
}

// Compression keys of a mapping (defaults.compress or a step) into `o`,
// refusing the keys this kind does not take.
void read_compress_keys(const ConfigNode& node, const std::string& kind, CompressOptions& o,
                        const std::vector<std::string>& allowed) {
  for (const auto& key : node.keys()) {
    if (key == "kind" || key == "name" || key == "baseline") continue;
    if (contains(kSharedDataKeys, key)) {
      throw Error(node.where(key) + ": '" + key + "' is set once for the whole run in the data: section "
                  "(every step is measured on the same held-out examples)");
    }
    if (key == "model" || key == "out" || key == "stage") {
      throw Error(node.where(key) + ": '" + key + "' is set by the pipeline (each step reads the previous step's output)");
    }
    bool known = false;
    for (const auto& k : compress_yaml_keys()) known = known || k.key == key;
    if (known && !contains(allowed, key)) {
      throw Error(node.where(key) + ": '" + key + "' is not an option of " + kind + " steps");
    }
    // Unknown keys are reported by finish() with their line.
  }
  std::vector<std::string> skip;
  for (const auto& k : compress_yaml_keys()) {
    if (!contains(allowed, k.key)) skip.push_back(k.key);
  }
  read_compress_yaml(node, o, skip);
}

// `set:` as overrides: nested mappings flattened to dotted paths, each leaf
// keeping its line.
void flatten_set(const YAML::Node& node, const std::string& prefix, const std::string& file,
                 std::vector<ConfigNode::Override>& out) {
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    const std::string path = prefix.empty() ? key : prefix + "." + key;
    const std::string where = file + ":" + std::to_string(it->first.Mark().line + 1);
    if (it->second.IsMap()) {
      flatten_set(it->second, path, file, out);
      continue;
    }
    YAML::Emitter e;
    e << YAML::Flow << it->second;
    out.push_back({path + "=" + std::string(e.c_str()), where});
  }
}

void read_pretrain_keys(const ConfigNode& node, const std::string& file, PipelineStep& s) {
  if (node.has("config")) s.train_config = node.get_string("config", "");
  if (node.has("launcher")) s.launcher = node.get_string("launcher", "");
  if (node.has("nproc")) {
    s.nproc = static_cast<int>(node.get_int("nproc", 0));
    if (s.nproc < 1) throw Error(node.where("nproc") + ": nproc must be at least 1");
  }
  if (node.has("set")) {
    const YAML::Node set = node.take("set");
    if (!set.IsMap()) throw Error(node.where("set") + ": 'set' must be a mapping of training config keys");
    flatten_set(set, "", file, s.train_set);
  }
  if (!s.launcher.empty() && s.nproc > 0) {
    throw Error(node.where("nproc") + ": give launcher or nproc, not both (nproc N is openba-pretrain's own launcher)");
  }
}

// Training keys the pipeline sets itself, refused in a `set:` (`more`: the
// keys a baseline sets too).
void check_pretrain_set(const std::vector<ConfigNode::Override>& set, const std::vector<std::string>& more = {}) {
  for (const auto& o : set) {
    const std::string key = o.assignment.substr(0, o.assignment.find('='));
    if (key == "model.checkpoint" || key == "model") {
      throw Error(o.where + ": model.checkpoint is set by the pipeline (the previous step's output)");
    }
    if (key == "distill" || key.rfind("distill.", 0) == 0) {
      throw Error(o.where + ": '" + key + "': distillation is a step's distill: key (teacher: input | STEP | DIR, "
                  "alpha, temperature, top_k), not a training key under set:");
    }
    if (key == "eval.seed" || key == "eval.examples_per_denoiser" || key == "data.heldout" || key == "eval") {
      throw Error(o.where + ": '" + key + "' is the run's held-out set, given once in the data: section "
                  "(heldout, heldout_per_denoiser, heldout_seed), so that every held-out figure is measured on the same examples");
    }
    if (contains(more, key)) throw Error(o.where + ": '" + key + "' is set by the baseline itself");
  }
}

// A pretrain step's distill: mapping; the teacher is resolved against the
// steps before it (`earlier`).
StepDistill read_distill(const ConfigNode& node, const std::vector<PipelineStep>& earlier) {
  StepDistill d;
  d.where = node.where("distill");
  const ConfigNode m = node.child("distill");
  d.teacher = m.require_string("teacher");
  if (d.teacher.empty()) throw Error(m.where("teacher") + ": distill.teacher is empty (input, an earlier step or a directory)");
  auto add = [&](const std::string& key, const std::string& value) {
    d.options.push_back({"distill." + key + "=" + value, m.where(key)});
  };
  char text[64];
  if (m.has("alpha")) {
    std::snprintf(text, sizeof(text), "%.17g", m.get_double("alpha", 0));
    add("alpha", text);
  }
  if (m.has("temperature")) {
    std::snprintf(text, sizeof(text), "%.17g", m.get_double("temperature", 0));
    add("temperature", text);
  }
  if (m.has("top_k")) add("top_k", std::to_string(m.get_int("top_k", 0)));
  if (d.teacher != "input") {
    std::vector<int> named;
    for (const auto& s : earlier) {
      if (d.teacher == std::to_string(s.index) || d.teacher == s.id) d.teacher_step = s.index - 1;
      if (d.teacher == s.name) named.push_back(s.index - 1);
    }
    if (d.teacher_step < 0 && named.size() > 1) {
      throw Error(m.where("teacher") + ": distill.teacher '" + d.teacher + "': several earlier steps are named so (" +
                  earlier[named[0]].id + ", " + earlier[named[1]].id + "); give the number or the directory");
    }
    if (d.teacher_step < 0 && named.size() == 1) d.teacher_step = named[0];
  }
  return d;
}

void check_later_reference(const StepDistill& d, const PipelineStep& self, const std::vector<ConfigNode>& steps,
                           const std::string& where) {
  if (d.teacher_step >= 0 || d.teacher == "input") return;
  for (size_t i = static_cast<size_t>(self.index - 1); i < steps.size(); ++i) {
    const std::string name = steps[i].get_string("name", steps[i].get_string("kind", ""));
    const std::string id = step_id(static_cast<int>(i) + 1, name);
    if (d.teacher == std::to_string(i + 1) || d.teacher == id || d.teacher == name) {
      throw Error(where + ": distill.teacher '" + d.teacher + "' names step " + id +
                  (i + 1 == static_cast<size_t>(self.index) ? ", this step itself" : ", which comes after this one") +
                  ": the teacher is the input model or an earlier step's output");
    }
  }
}

ScratchBaseline read_scratch(const ConfigNode& node, const std::string& file, const PipelineStep& pretrain_defaults) {
  ScratchBaseline b;
  b.where = node.where();
  b.lrs = node.get_doubles("lr", {});
  if (b.lrs.empty()) throw Error(node.where("lr") + ": baselines.scratch needs lr: [...] (the learning rates to sweep)");
  for (double lr : b.lrs) {
    if (!(lr > 0)) throw Error(node.where("lr") + ": learning rates must be positive");
  }
  b.extend = node.get_int("extend", 1);
  if (b.extend < 1) throw Error(node.where("extend") + ": extend must be >= 1 (1 = no longer run)");
  const int64_t seed = node.get_int("seed", 0);
  if (seed < 0) throw Error(node.where("seed") + ": seed must not be negative");
  b.seed = static_cast<uint64_t>(seed);
  PipelineStep own;
  read_pretrain_keys(node, file, own);
  b.train_config = node.has("config") ? own.train_config : pretrain_defaults.train_config;
  b.launcher = node.has("launcher") || node.has("nproc") ? own.launcher : pretrain_defaults.launcher;
  b.nproc = node.has("launcher") || node.has("nproc") ? own.nproc : pretrain_defaults.nproc;
  b.train_set = pretrain_defaults.train_set;
  b.train_set.insert(b.train_set.end(), own.train_set.begin(), own.train_set.end());
  check_pretrain_set(own.train_set, {"trainer.steps", "trainer.lr", "trainer.min_lr"});
  nlohmann::ordered_json spec;
  spec["lr"] = b.lrs;
  spec["extend"] = b.extend;
  spec["seed"] = b.seed;
  spec["config"] = b.train_config;
  spec["config_sha256"] = b.train_config.empty() ? "" : sha256_hex(read_text_file(b.train_config));
  auto set = nlohmann::ordered_json::array();
  for (const auto& o : b.train_set) set.push_back(o.assignment);
  spec["set"] = set;
  spec["launcher"] = b.launcher;
  spec["nproc"] = b.nproc;
  b.spec = spec;
  return b;
}

nlohmann::ordered_json compress_spec(const PipelineStep& s) {
  const CompressOptions& o = s.compress;
  nlohmann::ordered_json j;
  j["calib"] = o.calib;
  j["calib-samples"] = o.calib_samples;
  j["batch-size"] = o.batch_size;
  j["max-batch-tokens"] = o.max_batch_tokens;
  j["seed"] = o.seed;
  j["score"] = o.score;
  j["scores"] = o.scores_file;
  if (s.kind == StepKind::kLayer) {
    j["drop-encoder-layers"] = o.drop_encoder_layers;
    j["drop-decoder-layers"] = o.drop_decoder_layers;
    j["keep-encoder-layers"] = o.keep_encoder_layers == kUnset ? nlohmann::ordered_json() : nlohmann::ordered_json(o.keep_encoder_layers);
    j["keep-decoder-layers"] = o.keep_decoder_layers == kUnset ? nlohmann::ordered_json() : nlohmann::ordered_json(o.keep_decoder_layers);
  } else if (s.kind == StepKind::kNeuron) {
    for (auto [key, v] : {std::pair<const char*, int64_t>{"ffn", o.ffn}, {"heads", o.heads}, {"hidden", o.hidden}}) {
      j[key] = v == kUnset ? nlohmann::ordered_json() : nlohmann::ordered_json(v);
    }
    j["round-to"] = o.round_to;
    j["baseline"] = s.baseline;
  } else {
    j["vocab"] = o.vocab == kUnset ? nlohmann::ordered_json() : nlohmann::ordered_json(o.vocab);
    j["min-freq"] = o.min_freq;
    j["corpus"] = o.corpus;
  }
  return j;
}

PipelineMeasure read_measure(const ConfigNode& node) {
  PipelineMeasure m;
  if (node.has("speed")) {
    const ConfigNode speed = node.child("speed");
    m.speed = true;
    SpeedOptions& o = m.speed_options;
    if (speed.has("batches")) {
      o.batches.clear();
      for (double b : speed.get_doubles("batches", {})) {
        if (b != static_cast<double>(static_cast<int64_t>(b))) {
          throw Error(speed.where("batches") + ": batch sizes must be integers");
        }
        o.batches.push_back(static_cast<int64_t>(b));
      }
    }
    o.new_tokens = speed.get_int("new_tokens", o.new_tokens);
    o.input_length = speed.get_int("input_length", o.input_length);
    o.encoder_batch = speed.get_int("encoder_batch", o.encoder_batch);
    o.repeats = static_cast<int>(speed.get_int("repeats", o.repeats));
    try {
      check_speed_options(o);
    } catch (const Error& e) {
      throw Error(speed.where() + ": measure." + e.what());
    }
  }
  if (node.has("tasks")) {
    const YAML::Node tasks = node.take("tasks");
    if (!tasks.IsSequence() || tasks.size() == 0) {
      throw Error(node.where("tasks") + ": measure.tasks must be a list of task files");
    }
    for (size_t i = 0; i < tasks.size(); ++i) {
      const std::string file = tasks[i].IsScalar() ? tasks[i].as<std::string>() : "";
      if (file.empty()) throw Error(node.where("tasks") + ": measure.tasks[" + std::to_string(i) + "] is not a file name");
      if (!fs::is_regular_file(file)) throw Error(node.where("tasks") + ": task file " + file + " not found");
      if (std::find(m.tasks.begin(), m.tasks.end(), file) != m.tasks.end()) {
        throw Error(node.where("tasks") + ": task file " + file + " is listed twice");
      }
      m.tasks.push_back(file);
    }
  }
  m.device = node.get_string("device", m.device);
  if (!m.enabled()) throw Error(node.where() + ": measure: names neither speed nor tasks");
  return m;
}

}  // namespace

nlohmann::ordered_json PipelineMeasure::spec() const {
  nlohmann::ordered_json j;
  j["speed"] = speed ? speed_options_json(speed_options) : nlohmann::ordered_json();
  auto files = nlohmann::ordered_json::array();
  for (const auto& t : tasks) files.push_back({{"file", t}, {"sha256", sha256_hex(read_text_file(t))}});
  j["tasks"] = files;
  j["device"] = device;
  return j;
}

PipelineConfig load_pipeline(const std::string& path) {
  PipelineConfig p;
  p.file = path;
  const std::string text = read_text_file(path);
  p.sha256 = sha256_hex(text);
  const ConfigNode root = ConfigNode::load(path, std::vector<std::string>{});
  p.name = root.require_string("name");
  check_name(p.name, root.where("name"), "name");
  p.description = root.get_string("description", "");
  p.model = root.require_string("model");

  const ConfigNode data = root.child("data");
  p.data.train = data.get_string("train", "");
  p.data.heldout = data.get_string("heldout", "");
  p.data.heldout_per_denoiser = data.get_int("heldout_per_denoiser", p.data.heldout_per_denoiser);
  p.data.encoder_tokens = data.get_int("encoder_tokens", p.data.encoder_tokens);
  p.data.decoder_tokens = data.get_int("decoder_tokens", p.data.decoder_tokens);
  const int64_t seed = data.get_int("seed", 0);
  if (seed < 0) throw Error(data.where("seed") + ": data.seed must not be negative");
  p.data.seed = static_cast<uint64_t>(seed);
  const int64_t heldout_seed = data.get_int("heldout_seed", seed);
  if (heldout_seed < 0) throw Error(data.where("heldout_seed") + ": data.heldout_seed must not be negative");
  p.data.heldout_seed = static_cast<uint64_t>(heldout_seed);
  if (p.data.heldout_per_denoiser <= 0) throw Error(data.where("heldout_per_denoiser") + ": must be positive");
  if (p.data.encoder_tokens <= 0 || p.data.decoder_tokens <= 0) throw Error(data.where() + ": token budgets must be positive");

  // The defaults every step of a kind starts from.
  CompressOptions compress_defaults;
  compress_defaults.calib = p.data.train;
  compress_defaults.eval = p.data.heldout;
  compress_defaults.eval_samples = p.data.heldout_per_denoiser;
  compress_defaults.encoder_tokens = p.data.encoder_tokens;
  compress_defaults.decoder_tokens = p.data.decoder_tokens;
  compress_defaults.data_seed = p.data.seed;
  compress_defaults.heldout_seed = static_cast<int64_t>(p.data.heldout_seed);
  PipelineStep pretrain_defaults;
  if (root.has("defaults")) {
    const ConfigNode defaults = root.child("defaults");
    if (defaults.has("compress")) read_compress_keys(defaults.child("compress"), "all compression", compress_defaults, kCommonCompressKeys);
    if (defaults.has("pretrain")) read_pretrain_keys(defaults.child("pretrain"), path, pretrain_defaults);
    check_pretrain_set(pretrain_defaults.train_set);
  }

  p.compress_defaults = compress_defaults;
  const std::vector<ConfigNode> steps = root.list("steps");
  if (steps.empty()) throw Error(root.where("steps") + ": the pipeline has no steps");
  std::set<std::string> names;
  for (size_t i = 0; i < steps.size(); ++i) {
    const ConfigNode& node = steps[i];
    PipelineStep s;
    s.index = static_cast<int>(i) + 1;
    s.where = node.where();
    const std::string kind = node.require_string("kind");
    const std::optional<StepKind> parsed = parse_step_kind(kind);
    if (!parsed) {
      throw Error(node.where("kind") + ": unknown step kind '" + kind + "' (layer, neuron, vocab, pretrain or eval)");
    }
    s.kind = *parsed;
    s.name = node.get_string("name", kind);
    check_name(s.name, node.where("name"), "step name");
    if (node.has("name") && !names.insert(s.name).second) throw Error(node.where("name") + ": a second step named '" + s.name + "'");
    s.id = step_id(s.index, s.name);
    nlohmann::ordered_json spec;
    spec["kind"] = kind;
    spec["name"] = s.name;
    if (prunes(s.kind)) {
      s.compress = compress_defaults;
      std::vector<std::string> allowed = kCommonCompressKeys;
      const auto& own = s.kind == StepKind::kLayer ? kLayerKeys : s.kind == StepKind::kNeuron ? kNeuronKeys : kVocabKeys;
      allowed.insert(allowed.end(), own.begin(), own.end());
      read_compress_keys(node, kind, s.compress, allowed);
      if (node.has("baseline")) {
        s.baseline = node.get_string("baseline", "");
        if (s.kind != StepKind::kNeuron || s.baseline != "random") {
          throw Error(node.where("baseline") + ": baseline: random is an option of neuron steps (the released random selection next to the scored one)");
        }
      }
      s.compress.stage = kind;
      spec["options"] = compress_spec(s);
    } else if (s.kind == StepKind::kPretrain) {
      s.train_config = pretrain_defaults.train_config;
      s.train_set = pretrain_defaults.train_set;
      s.launcher = pretrain_defaults.launcher;
      s.nproc = pretrain_defaults.nproc;
      PipelineStep own;
      read_pretrain_keys(node, path, own);
      if (node.has("config")) s.train_config = own.train_config;
      if (node.has("launcher") || node.has("nproc")) {
        s.launcher = own.launcher;
        s.nproc = own.nproc;
      }
      s.train_set.insert(s.train_set.end(), own.train_set.begin(), own.train_set.end());
      check_pretrain_set(own.train_set);
      if (node.has("distill")) {
        s.distill = read_distill(node, p.steps);
        check_later_reference(s.distill, s, steps, s.distill.where);
      }
      if (node.has("baseline")) {
        s.baseline = node.get_string("baseline", "");
        if (s.baseline != "ul2" || !s.distill.enabled()) {
          throw Error(node.where("baseline") + ": a pretrain step's baseline is ul2 (the same step trained without "
                      "distillation, beside it), and needs the step's distill: section");
        }
      }
      spec["config"] = s.train_config;
      spec["config_sha256"] = s.train_config.empty() ? "" : sha256_hex(read_text_file(s.train_config));
      auto set = nlohmann::ordered_json::array();
      for (const auto& o : s.train_set) set.push_back(o.assignment);
      spec["set"] = set;
      if (s.distill.enabled()) {
        nlohmann::ordered_json d;
        d["teacher"] = s.distill.teacher;
        auto options = nlohmann::ordered_json::array();
        for (const auto& o : s.distill.options) options.push_back(o.assignment);
        d["options"] = options;
        spec["distill"] = d;
      }
      spec["baseline"] = s.baseline;
    }
    // eval: no options.
    nlohmann::ordered_json d;
    d["train"] = p.data.train;
    d["heldout"] = p.data.heldout;
    d["heldout_per_denoiser"] = p.data.heldout_per_denoiser;
    d["encoder_tokens"] = p.data.encoder_tokens;
    d["decoder_tokens"] = p.data.decoder_tokens;
    d["seed"] = p.data.seed;
    d["heldout_seed"] = p.data.heldout_seed;
    spec["data"] = d;
    s.spec = spec;
    p.steps.push_back(std::move(s));
  }
  if (root.has("baselines")) {
    const ConfigNode baselines = root.child("baselines");
    if (baselines.has("scratch")) p.scratch = read_scratch(baselines.child("scratch"), path, pretrain_defaults);
  }
  if (root.has("measure")) p.measure = read_measure(root.child("measure"));
  root.finish();
  return p;
}

const PipelineStep& find_step(const PipelineConfig& config, const std::string& which, const std::string& flag) {
  for (const auto& s : config.steps) {
    if (which == std::to_string(s.index) || which == s.id) return s;
  }
  std::vector<const PipelineStep*> named;
  for (const auto& s : config.steps) {
    if (which == s.name) named.push_back(&s);
  }
  if (named.size() == 1) return *named.front();
  std::string list;
  if (named.size() > 1) {
    for (const auto* s : named) list += (list.empty() ? "" : ", ") + s->id;
    throw Error(flag + " " + which + ": several steps are named so (" + list + "); give the number or the directory");
  }
  for (const auto& s : config.steps) list += (list.empty() ? "" : ", ") + s.id;
  throw Error(flag + " " + which + ": no such step in " + config.file + " (steps: " + list + ")");
}

}  // namespace openba
