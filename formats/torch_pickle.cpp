#include "formats/torch_pickle.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <unordered_map>

#include "util/error.h"

namespace openba {
namespace {

// Values live in an arena and refer to each other by raw pointer: cyclic or
// deeply nested inputs cannot leak or overflow the stack on destruction.
struct Value {
  enum Kind { kNone, kBool, kInt, kFloat, kStr, kBytes, kTuple, kList, kDict, kGlobal,
              kStorage, kTensor };
  Kind kind = kNone;
  int64_t i = 0;
  std::string s;  // str/bytes text, or "module.name" for a global
  std::vector<Value*> items;                      // tuple, list
  std::vector<std::pair<Value*, Value*>> entries; // dict
  // storage
  DType dtype = DType::F32;
  int64_t numel = 0;
  // tensor
  Value* storage = nullptr;
  int64_t storage_offset = 0;
  std::vector<int64_t> shape, strides;
};

const char* kind_name(Value::Kind k) {
  static const char* names[] = {"None", "bool", "int", "float", "str", "bytes", "tuple", "list",
                                "dict", "global", "storage", "tensor"};
  return names[k];
}

class Unpickler {
 public:
  Unpickler(const uint8_t* data, uint64_t size, const std::string& source)
      : data_(data), size_(size), source_(source) {}

  Value* run();

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(source_ + ": data.pkl byte " + std::to_string(op_start_) + ": " + what);
  }
  Value* make(Value::Kind kind) {
    if (arena_.size() >= kMaxValues) fail("too many objects in pickle");
    arena_.push_back(std::make_unique<Value>());
    arena_.back()->kind = kind;
    return arena_.back().get();
  }
  uint64_t read_uint(int width) {
    if (pos_ + width > size_) fail("unexpected end of pickle (truncated data.pkl?)");
    uint64_t v = 0;
    for (int i = width - 1; i >= 0; --i) v = (v << 8) | data_[pos_ + i];
    pos_ += width;
    return v;
  }
  std::string read_bytes(uint64_t n) {
    if (n > size_ - pos_) fail("string runs past the end of the pickle");
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }
  std::string read_line() {
    const uint64_t start = pos_;
    while (pos_ < size_ && data_[pos_] != '\n') ++pos_;
    if (pos_ >= size_) fail("unterminated line in GLOBAL");
    std::string s(reinterpret_cast<const char*>(data_ + start), pos_ - start);
    ++pos_;
    return s;
  }
  void push(Value* v) {
    if (stack_.size() >= kMaxStack) fail("pickle stack too deep");
    stack_.push_back(v);
  }
  Value* pop() {
    if (stack_.size() <= mark_floor()) fail("stack underflow");
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value* top() {
    if (stack_.size() <= mark_floor()) fail("stack underflow");
    return stack_.back();
  }
  size_t mark_floor() const { return marks_.empty() ? 0 : marks_.back(); }
  std::vector<Value*> pop_to_mark() {
    if (marks_.empty()) fail("no MARK on the stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Value*> items(stack_.begin() + m, stack_.end());
    stack_.resize(m);
    return items;
  }
  Value* global(const std::string& module, const std::string& name);
  Value* persistent_load(Value* pid);
  Value* reduce(Value* callable, Value* args);
  void set_items(Value* dict, const std::vector<Value*>& kv);
  int64_t as_int(Value* v, const char* what) {
    if (v->kind != Value::kInt) fail(std::string(what) + " must be an int, got " + kind_name(v->kind));
    return v->i;
  }
  std::vector<int64_t> int_tuple(Value* v, const char* what) {
    if (v->kind != Value::kTuple) fail(std::string(what) + " must be a tuple of ints");
    std::vector<int64_t> out;
    for (Value* item : v->items) out.push_back(as_int(item, what));
    return out;
  }

  static constexpr size_t kMaxValues = 50'000'000;
  static constexpr size_t kMaxStack = 1'000'000;

  const uint8_t* data_;
  uint64_t size_;
  const std::string& source_;
  uint64_t pos_ = 0;
  uint64_t op_start_ = 0;
  std::vector<std::unique_ptr<Value>> arena_;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value*> memo_;
};

Value* Unpickler::global(const std::string& module, const std::string& name) {
  const bool allowed =
      (module == "collections" && name == "OrderedDict") ||
      (module == "torch._utils" && (name == "_rebuild_tensor_v2" || name == "_rebuild_parameter")) ||
      (module == "torch" && dtype_from_torch_storage(name).has_value());
  if (!allowed) {
    fail("refusing global '" + module + "." + name +
         "': a state dict needs only tensors, storages and OrderedDict (not executing it)");
  }
  Value* v = make(Value::kGlobal);
  v->s = module + "." + name;
  return v;
}

Value* Unpickler::persistent_load(Value* pid) {
  // ('storage', torch.<Type>Storage, key, location, numel)
  if (pid->kind != Value::kTuple || pid->items.size() != 5 || pid->items[0]->kind != Value::kStr ||
      pid->items[0]->s != "storage") {
    fail("unsupported persistent id (expected a ('storage', type, key, location, numel) tuple)");
  }
  Value* type = pid->items[1];
  if (type->kind != Value::kGlobal || type->s.rfind("torch.", 0) != 0) {
    fail("persistent id does not name a torch storage type");
  }
  auto dtype = dtype_from_torch_storage(type->s.substr(6));
  if (!dtype) fail("unknown storage type '" + type->s + "'");
  if (pid->items[2]->kind != Value::kStr) fail("storage key must be a string");
  Value* storage = make(Value::kStorage);
  storage->dtype = *dtype;
  storage->s = pid->items[2]->s;
  storage->numel = as_int(pid->items[4], "storage numel");
  if (storage->numel < 0) fail("negative storage size");
  return storage;
}

Value* Unpickler::reduce(Value* callable, Value* args) {
  if (callable->kind != Value::kGlobal) fail("REDUCE on a non-callable " + std::string(kind_name(callable->kind)));
  if (args->kind != Value::kTuple) fail("REDUCE arguments must be a tuple");
  const auto& a = args->items;
  if (callable->s == "collections.OrderedDict") {
    Value* dict = make(Value::kDict);
    if (!a.empty()) {
      // OrderedDict(iterable_of_pairs)
      if (a.size() != 1 || a[0]->kind != Value::kList) fail("unsupported OrderedDict arguments");
      for (Value* pair : a[0]->items) {
        if (pair->kind != Value::kTuple || pair->items.size() != 2) fail("OrderedDict item is not a pair");
        dict->entries.emplace_back(pair->items[0], pair->items[1]);
      }
    }
    return dict;
  }
  if (callable->s == "torch._utils._rebuild_tensor_v2") {
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if (a.size() != 6 && a.size() != 7) fail("_rebuild_tensor_v2 takes 6 or 7 arguments");
    if (a[0]->kind != Value::kStorage) fail("_rebuild_tensor_v2: first argument is not a storage");
    Value* t = make(Value::kTensor);
    t->storage = a[0];
    t->storage_offset = as_int(a[1], "storage offset");
    t->shape = int_tuple(a[2], "tensor size");
    t->strides = int_tuple(a[3], "tensor stride");
    if (t->shape.size() != t->strides.size()) fail("tensor size and stride differ in length");
    if (t->storage_offset < 0) fail("negative storage offset");
    for (size_t i = 0; i < t->shape.size(); ++i) {
      if (t->shape[i] < 0 || t->strides[i] < 0) fail("negative tensor size or stride");
    }
    return t;
  }
  if (callable->s == "torch._utils._rebuild_parameter") {
    // (data, requires_grad, backward_hooks): a Parameter is its tensor here.
    if (a.size() != 3 || a[0]->kind != Value::kTensor) fail("unsupported _rebuild_parameter arguments");
    return a[0];
  }
  fail("'" + callable->s + "' cannot be called");
}

void Unpickler::set_items(Value* dict, const std::vector<Value*>& kv) {
  if (dict->kind != Value::kDict) fail("SETITEM on a " + std::string(kind_name(dict->kind)));
  if (kv.size() % 2 != 0) fail("SETITEMS with an odd number of items");
  for (size_t i = 0; i < kv.size(); i += 2) dict->entries.emplace_back(kv[i], kv[i + 1]);
}

Value* Unpickler::run() {
  while (true) {
    op_start_ = pos_;
    if (pos_ >= size_) fail("pickle ends without STOP (truncated data.pkl?)");
    const uint8_t op = data_[pos_++];
    switch (op) {
      case 0x80: {  // PROTO
        const uint64_t proto = read_uint(1);
        if (proto > 5) fail("unsupported pickle protocol " + std::to_string(proto));
        break;
      }
      case 0x95: read_uint(8); break;  // FRAME: framing is irrelevant in memory
      case '.': {                      // STOP
        if (stack_.size() != 1 || !marks_.empty()) fail("STOP with a malformed stack");
        return stack_.back();
      }
      case '(': marks_.push_back(stack_.size()); break;  // MARK
      case '}': push(make(Value::kDict)); break;         // EMPTY_DICT
      case ']': push(make(Value::kList)); break;         // EMPTY_LIST
      case ')': push(make(Value::kTuple)); break;        // EMPTY_TUPLE
      case 'N': push(make(Value::kNone)); break;
      case 0x88:
      case 0x89: {  // NEWTRUE / NEWFALSE
        Value* v = make(Value::kBool);
        v->i = op == 0x88;
        push(v);
        break;
      }
      case 'J': {  // BININT
        Value* v = make(Value::kInt);
        v->i = static_cast<int32_t>(read_uint(4));
        push(v);
        break;
      }
      case 'K':
      case 'M': {  // BININT1 / BININT2
        Value* v = make(Value::kInt);
        v->i = static_cast<int64_t>(read_uint(op == 'K' ? 1 : 2));
        push(v);
        break;
      }
      case 0x8a: {  // LONG1
        const uint64_t n = read_uint(1);
        if (n > 8) fail("integer too large");
        uint64_t raw = n ? read_uint(static_cast<int>(n)) : 0;
        if (n > 0 && n < 8 && (raw >> (8 * n - 1)) & 1) raw |= ~0ull << (8 * n);  // sign-extend
        Value* v = make(Value::kInt);
        v->i = static_cast<int64_t>(raw);
        push(v);
        break;
      }
      case 'G': {  // BINFLOAT (big-endian)
        uint64_t bits = 0;
        if (pos_ + 8 > size_) fail("truncated float");
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | data_[pos_ + i];
        pos_ += 8;
        Value* v = make(Value::kFloat);
        v->i = static_cast<int64_t>(bits);
        push(v);
        break;
      }
      case 'X':
      case 0x8c:
      case 0x8d:
      case 'T':
      case 'U':
      case 'B':
      case 'C': {  // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, BINSTRING, SHORT_BINSTRING, BINBYTES, SHORT_BINBYTES
        const int width = (op == 0x8c || op == 'U' || op == 'C') ? 1 : (op == 0x8d ? 8 : 4);
        Value* v = make((op == 'B' || op == 'C') ? Value::kBytes : Value::kStr);
        v->s = read_bytes(read_uint(width));
        push(v);
        break;
      }
      case 'c': {  // GLOBAL
        const std::string module = read_line();
        const std::string name = read_line();
        push(global(module, name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        Value* name = pop();
        Value* module = pop();
        if (name->kind != Value::kStr || module->kind != Value::kStr) fail("STACK_GLOBAL needs two strings");
        push(global(module->s, name->s));
        break;
      }
      case 'q':
      case 'r': memo_[read_uint(op == 'q' ? 1 : 4)] = top(); break;  // BINPUT / LONG_BINPUT
      case 0x94: memo_[memo_.size()] = top(); break;                   // MEMOIZE
      case 'h':
      case 'j': {  // BINGET / LONG_BINGET
        auto it = memo_.find(read_uint(op == 'h' ? 1 : 4));
        if (it == memo_.end()) fail("memo lookup of an unset slot");
        push(it->second);
        break;
      }
      case 't': {  // TUPLE
        Value* v = make(Value::kTuple);
        v->items = pop_to_mark();
        push(v);
        break;
      }
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        Value* v = make(Value::kTuple);
        v->items.resize(op - 0x84);
        for (size_t i = v->items.size(); i-- > 0;) v->items[i] = pop();
        push(v);
        break;
      }
      case 'l': {  // LIST
        Value* v = make(Value::kList);
        v->items = pop_to_mark();
        push(v);
        break;
      }
      case 'd': {  // DICT
        Value* v = make(Value::kDict);
        set_items(v, pop_to_mark());
        push(v);
        break;
      }
      case 'a': {  // APPEND
        Value* item = pop();
        Value* list = top();
        if (list->kind != Value::kList) fail("APPEND to a " + std::string(kind_name(list->kind)));
        list->items.push_back(item);
        break;
      }
      case 'e': {  // APPENDS
        std::vector<Value*> items = pop_to_mark();
        Value* list = top();
        if (list->kind != Value::kList) fail("APPENDS to a " + std::string(kind_name(list->kind)));
        list->items.insert(list->items.end(), items.begin(), items.end());
        break;
      }
      case 's': {  // SETITEM
        Value* value = pop();
        Value* key = pop();
        set_items(top(), {key, value});
        break;
      }
      case 'u': {  // SETITEMS
        std::vector<Value*> kv = pop_to_mark();
        set_items(top(), kv);
        break;
      }
      case 'Q': push(persistent_load(pop())); break;  // BINPERSID
      case 'R': {                                      // REDUCE
        Value* args = pop();
        Value* callable = pop();
        push(reduce(callable, args));
        break;
      }
      case 'b': {  // BUILD: only the OrderedDict's __dict__ (state_dict metadata) is expected
        Value* state = pop();
        Value* target = top();
        if (target->kind != Value::kDict) fail("BUILD on a " + std::string(kind_name(target->kind)));
        (void)state;  // metadata such as _metadata versions is not needed
        break;
      }
      default: {
        char hex[8];
        std::snprintf(hex, sizeof(hex), "0x%02x", op);
        fail(std::string("unsupported pickle opcode ") + hex);
      }
    }
  }
}

}  // namespace

std::vector<PickledTensor> parse_state_dict_pickle(const uint8_t* data, uint64_t size,
                                                   const std::string& source) {
  Unpickler unpickler(data, size, source);
  Value* root = unpickler.run();
  if (root->kind != Value::kDict) {
    throw Error(source + ": data.pkl holds a " + std::string(kind_name(root->kind)) +
                ", not a state dict");
  }
  std::vector<PickledTensor> out;
  out.reserve(root->entries.size());
  for (const auto& [key, value] : root->entries) {
    if (key->kind != Value::kStr) throw Error(source + ": state dict key is not a string");
    if (value->kind != Value::kTensor) {
      throw Error(source + ": state dict entry '" + key->s + "' is a " + kind_name(value->kind) +
                  ", not a tensor");
    }
    PickledTensor t;
    t.name = key->s;
    t.dtype = value->storage->dtype;
    t.storage_key = value->storage->s;
    t.storage_numel = value->storage->numel;
    t.storage_offset = value->storage_offset;
    t.shape = value->shape;
    t.strides = value->strides;
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace openba
