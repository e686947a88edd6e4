#include "util/config_node.h"

#include "util/error.h"

namespace openba {

namespace {

// `where` names the override in errors ("" = "--set <text>").
void apply_override(YAML::Node root, const std::string& text, std::set<std::string>& paths,
                    std::map<std::string, std::string>& wheres, const std::string& where = "") {
  const std::string at = where.empty() ? "--set " + text : where;
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) throw Error(at + ": expected key.path=value");
  const std::string path = text.substr(0, eq);
  YAML::Node value;
  try {
    value = YAML::Load(text.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    throw Error(at + ": value is not valid YAML (" + e.msg + ")");
  }
  std::vector<std::string> keys;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    keys.push_back(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  YAML::Node node = root;
  std::string so_far;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].empty()) throw Error(at + ": empty key in path");
    so_far += (so_far.empty() ? "" : ".") + keys[i];
    if (i + 1 == keys.size()) {
      node[keys[i]] = value;
      break;
    }
    if (node[keys[i]] && !node[keys[i]].IsMap()) {
      throw Error(at + ": '" + so_far + "' is not a section");
    }
    if (!node[keys[i]]) node[keys[i]] = YAML::Node(YAML::NodeType::Map);
    node.reset(node[keys[i]]);
  }
  paths.insert(path);
  if (!where.empty()) wheres[path] = where;
}

}  // namespace

ConfigNode ConfigNode::parse(const std::string& text, const std::string& source,
                             const std::vector<std::string>& overrides) {
  auto state = std::make_shared<State>();
  state->source = source;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw Error(source + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
  }
  if (!root || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) throw Error(source + ": the configuration must be a YAML mapping");
  for (const auto& o : overrides) apply_override(root, o, state->overrides, state->override_where);
  return ConfigNode(root, "", state);
}

ConfigNode ConfigNode::load(const std::string& path, const std::vector<std::string>& overrides) {
  YAML::Node probe;
  std::string text;
  try {
    probe = YAML::LoadFile(path);  // also the readable-file check
  } catch (const YAML::BadFile&) {
    throw Error(path + ": cannot open configuration file");
  } catch (const YAML::ParserException& e) {
    throw Error(path + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
  }
  auto state = std::make_shared<State>();
  state->source = path;
  if (!probe || probe.IsNull()) probe = YAML::Node(YAML::NodeType::Map);
  if (!probe.IsMap()) throw Error(path + ": the configuration must be a YAML mapping");
  for (const auto& o : overrides) apply_override(probe, o, state->overrides, state->override_where);
  return ConfigNode(probe, "", state);
}

ConfigNode ConfigNode::load(const std::string& path, const std::vector<Override>& overrides, const std::string& source) {
  ConfigNode node = path.empty() ? parse("", source) : load(path, std::vector<std::string>{});
  for (const auto& o : overrides) {
    apply_override(node.node_, o.assignment, node.state_->overrides, node.state_->override_where, o.where);
  }
  return node;
}

std::string ConfigNode::override_source(const std::string& path) const {
  const auto it = state_->override_where.find(path);
  return it != state_->override_where.end() ? it->second : "--set " + path;
}

std::vector<std::string> ConfigNode::keys() const {
  std::vector<std::string> out;
  if (!node_.IsMap()) return out;
  for (auto it = node_.begin(); it != node_.end(); ++it) out.push_back(it->first.as<std::string>());
  return out;
}

YAML::Node ConfigNode::take(const std::string& key) const {
  const YAML::Node n = value(key);
  if (n) mark_read(n, full(key));
  return n;
}

void ConfigNode::mark_read(const YAML::Node& node, const std::string& path) const {
  state_->read.insert(path);
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) mark_read(it->second, path + "." + it->first.as<std::string>());
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) mark_read(node[i], path + "[" + std::to_string(i) + "]");
  }
}

std::string ConfigNode::where(const std::string& key) const {
  const std::string p = key.empty() ? path_ : full(key);
  // An override of this key, or of a section containing it.
  for (const auto& o : state_->overrides) {
    if (p == o || p.rfind(o + ".", 0) == 0) return override_source(o);
  }
  YAML::Node n = key.empty() ? node_ : node_[key];
  if (n && n.Mark().line >= 0) return state_->source + ":" + std::to_string(n.Mark().line + 1);
  if (node_.Mark().line >= 0) return state_->source + ":" + std::to_string(node_.Mark().line + 1);
  return state_->source;
}

YAML::Node ConfigNode::value(const std::string& key) const {
  state_->read.insert(full(key));
  return node_[key];
}

bool ConfigNode::has(const std::string& key) const {
  const YAML::Node n = node_[key];
  return n && !n.IsNull();
}

void ConfigNode::type_error(const std::string& key, const char* expected) const {
  const YAML::Node n = node_[key];
  std::string got;
  if (n.IsScalar()) got = " (got '" + n.Scalar() + "')";
  throw Error(where(key) + ": '" + full(key) + "' must be " + expected + got);
}

ConfigNode ConfigNode::child(const std::string& key) const {
  const YAML::Node n = value(key);
  if (!n || n.IsNull()) throw Error(where() + ": missing section '" + full(key) + "'");
  if (!n.IsMap()) type_error(key, "a mapping");
  return ConfigNode(n, full(key), state_);
}

std::vector<ConfigNode> ConfigNode::list(const std::string& key) const {
  const YAML::Node n = value(key);
  if (!n || n.IsNull()) throw Error(where() + ": missing list '" + full(key) + "'");
  if (!n.IsSequence()) type_error(key, "a list");
  std::vector<ConfigNode> out;
  for (size_t i = 0; i < n.size(); ++i) {
    const std::string item_path = full(key) + "[" + std::to_string(i) + "]";
    if (!n[i].IsMap()) throw Error(where(key) + ": '" + item_path + "' must be a mapping");
    state_->read.insert(item_path);
    out.push_back(ConfigNode(n[i], item_path, state_));
  }
  return out;
}

#define OPENBA_SCALAR_GETTERS(Type, Name, expected)                                     \
  Type ConfigNode::get_##Name(const std::string& key, Type fallback) const {             \
    const YAML::Node n = value(key);                                                      \
    if (!n || n.IsNull()) return fallback;                                                \
    if (!n.IsScalar()) type_error(key, expected);                                         \
    try {                                                                                 \
      return n.as<Type>();                                                                \
    } catch (const YAML::Exception&) {                                                    \
      type_error(key, expected);                                                          \
    }                                                                                     \
  }

OPENBA_SCALAR_GETTERS(int64_t, int, "an integer")
OPENBA_SCALAR_GETTERS(double, double, "a number")
OPENBA_SCALAR_GETTERS(bool, bool, "true or false")
#undef OPENBA_SCALAR_GETTERS

std::string ConfigNode::get_string(const std::string& key, const std::string& fallback) const {
  const YAML::Node n = value(key);
  if (!n || n.IsNull()) return fallback;
  if (!n.IsScalar()) type_error(key, "a string");
  return n.Scalar();
}

int64_t ConfigNode::require_int(const std::string& key) const {
  if (!has(key)) throw Error(where() + ": missing required key '" + full(key) + "'");
  return get_int(key, 0);
}

double ConfigNode::require_double(const std::string& key) const {
  if (!has(key)) throw Error(where() + ": missing required key '" + full(key) + "'");
  return get_double(key, 0);
}

std::string ConfigNode::require_string(const std::string& key) const {
  if (!has(key)) throw Error(where() + ": missing required key '" + full(key) + "'");
  return get_string(key, "");
}

std::vector<double> ConfigNode::get_doubles(const std::string& key, const std::vector<double>& fallback) const {
  const YAML::Node n = value(key);
  if (!n || n.IsNull()) return fallback;
  if (!n.IsSequence()) type_error(key, "a list of numbers");
  std::vector<double> out;
  for (size_t i = 0; i < n.size(); ++i) {
    try {
      out.push_back(n[i].as<double>());
    } catch (const YAML::Exception&) {
      type_error(key, "a list of numbers");
    }
  }
  return out;
}

void ConfigNode::check_unread(const YAML::Node& node, const std::string& path) const {
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      const std::string key = it->first.as<std::string>();
      const std::string p = path.empty() ? key : path + "." + key;
      if (!state_->read.count(p)) {
        std::string at = state_->source;
        bool overridden = false;
        for (const auto& o : state_->overrides) {
          if (p == o || p.rfind(o + ".", 0) == 0) {
            at = override_source(o);
            overridden = true;
          }
        }
        if (!overridden && it->first.Mark().line >= 0) at += ":" + std::to_string(it->first.Mark().line + 1);
        throw Error(at + ": unknown key '" + p + "'");
      }
      check_unread(it->second, p);
    }
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) check_unread(node[i], path + "[" + std::to_string(i) + "]");
  }
}

void ConfigNode::finish() const { check_unread(node_, path_); }

std::string ConfigNode::dump() const {
  YAML::Emitter out;
  out << node_;
  return std::string(out.c_str()) + "\n";
}

}  // namespace openba
