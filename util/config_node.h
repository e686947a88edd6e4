// Strict YAML configuration with command-line overrides.
//
// A ConfigNode reads typed values and remembers which keys it was asked for;
// finish() then reports any key nobody asked for (a typo) with its file and
// line, or with the --set that introduced it. Overrides are dotted paths,
// `--set trainer.steps=20`, whose value is parsed as YAML (so lists work:
// `--set trainer.betas=[0.9,0.95]`).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace openba {

class ConfigNode {
 public:
  // Loads `path` and applies `overrides` ("a.b.c=value", in order).
  static ConfigNode load(const std::string& path, const std::vector<std::string>& overrides);
  // An override that came from elsewhere than the command line (a pipeline
  // file): errors about its key name `where` ("pipeline.yaml:12") instead of
  // "--set a.b.c".
  struct Override {
    std::string assignment;  // "a.b.c=value"
    std::string where;
  };
  // `path` empty: start from an empty configuration named `source`.
  static ConfigNode load(const std::string& path, const std::vector<Override>& overrides, const std::string& source);
  // From YAML text (tests; `source` names it in errors).
  static ConfigNode parse(const std::string& text, const std::string& source,
                          const std::vector<std::string>& overrides = {});

  bool has(const std::string& key) const;
  ConfigNode child(const std::string& key) const;  // a mapping; Error if absent or not a map
  std::vector<ConfigNode> list(const std::string& key) const;  // a sequence of mappings

  int64_t get_int(const std::string& key, int64_t fallback) const;
  int64_t require_int(const std::string& key) const;
  double get_double(const std::string& key, double fallback) const;
  double require_double(const std::string& key) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  std::string require_string(const std::string& key) const;
  std::vector<double> get_doubles(const std::string& key, const std::vector<double>& fallback) const;

  // The keys of this mapping, in file order (reads nothing).
  std::vector<std::string> keys() const;
  // A whole value taken as it is (a free-form section): the key and
  // everything under it count as read.
  YAML::Node take(const std::string& key) const;

  // "file:line" of a key (or of this node), or "--set path" when an override made it.
  std::string where(const std::string& key = "") const;
  const std::string& path() const { return path_; }

  // Throws Error naming the first key (anywhere under this node) never read.
  void finish() const;
  // The effective configuration (after overrides) as YAML text.
  std::string dump() const;

 private:
  struct State {
    std::string source;
    std::set<std::string> overrides;  // dotted paths set on the command line
    std::map<std::string, std::string> override_where;  // path -> where it was set, when not "--set path"
    std::set<std::string> read;       // dotted paths asked for
  };
  ConfigNode(YAML::Node node, std::string path, std::shared_ptr<State> state)
      : node_(std::move(node)), path_(std::move(path)), state_(std::move(state)) {}
  std::string full(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  YAML::Node value(const std::string& key) const;  // marks the key read
  [[noreturn]] void type_error(const std::string& key, const char* expected) const;
  void check_unread(const YAML::Node& node, const std::string& path) const;
  void mark_read(const YAML::Node& node, const std::string& path) const;
  std::string override_source(const std::string& path) const;

  YAML::Node node_;
  std::string path_;
  std::shared_ptr<State> state_;
};

}  // namespace openba
