// A stack-effect walk over pickle opcodes, then LibTorch's unpickler.
#include "model/torch_pickle.h"

#include <cstring>
#include <map>
#include <vector>

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/unpickler.h>
#include <torch/torch.h>

#include "model/errors.h"
#include "model/file_util.h"

namespace superpose {
namespace {

// Keys of the entries a rewritten OrderedDict carries until strip_markers.
constexpr const char* kClassKey = "__superpose_pickle_class__";
constexpr const char* kArgsKey = "__superpose_pickle_args__";
constexpr const char* kStateKey = "__superpose_pickle_state__";

// What the walk knows about a stack entry.
enum class Tag { kOther, kMark, kOrderedDictClass, kOrderedDict, kEmptyTuple };

// A stack entry: its tag and where in the output the bytes producing it begin.
struct Entry {
  Tag tag = Tag::kOther;
  size_t begin = 0;
  bool operator==(Tag t) const { return tag == t; }
  bool operator!=(Tag t) const { return tag != t; }
};

// A BINUNICODE opcode pushing `text`.
std::string unicode_op(const std::string& text) {
  std::string op = "X";
  for (int i = 0; i < 4; ++i) op += static_cast<char>((text.size() >> (8 * i)) & 0xff);
  return op + text;
}

class Rewriter {
 public:
  Rewriter(std::string_view in, std::string where) : in_(in), where_(std::move(where)) {}

  std::string run() {
    while (pos_ < in_.size()) {
      const size_t start = pos_;
      const auto op = static_cast<unsigned char>(in_[pos_++]);
      if (!step(op, start)) return out_;
    }
    throw Error(where_, "pickle program ends without STOP");
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(where_, "malformed pickle at byte " + std::to_string(pos_) + ": " + what);
  }
  void need(size_t n) {
    if (in_.size() - pos_ < n) fail("truncated");
  }
  uint64_t little(size_t n) {
    need(n);
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(in_[pos_ + i])) << (8 * i);
    pos_ += n;
    return v;
  }
  std::string line() {
    const size_t end = in_.find('\n', pos_);
    if (end == std::string_view::npos) fail("unterminated text argument");
    std::string s(in_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }
  void skip(uint64_t n) {
    if (n > in_.size() - pos_) fail("argument runs past the end");
    pos_ += n;
  }
  Entry pop() {
    if (stack_.empty() || stack_.back() == Tag::kMark) fail("stack underflow");
    const Entry e = stack_.back();
    stack_.pop_back();
    begin_ = std::min(begin_, e.begin);
    return e;
  }
  void pop_mark() {
    while (!stack_.empty() && stack_.back() != Tag::kMark) pop();
    if (stack_.empty()) fail("no MARK");
    begin_ = std::min(begin_, stack_.back().begin);
    stack_.pop_back();
  }
  Entry top() {
    if (stack_.empty()) fail("stack underflow");
    return stack_.back();
  }
  // Pushes what this opcode produced; it begins where the earliest entry it consumed began.
  void push(Tag tag) { stack_.push_back({tag, begin_}); }
  void copy(size_t start) { out_.append(in_.substr(start, pos_ - start)); }

  // Interprets one opcode's stack effect and writes its (possibly rewritten)
  // bytes. Returns false after STOP.
  bool step(unsigned char op, size_t start) {
    begin_ = out_.size();
    switch (op) {
      case '.': copy(start); return false;                                   // STOP
      case 0x80: skip(1); break;                                             // PROTO
      case 0x95: skip(8); return true;                                       // FRAME: dropped
      case '(': push(Tag::kMark); break;                         // MARK
      case '0': pop(); break;                                                // POP
      case '1': pop_mark(); break;                                           // POP_MARK
      case '2': stack_.push_back({top().tag, out_.size()}); break;                              // DUP
      case 'N': case 0x88: case 0x89: case '}': case ']': case 0x8f:         // NONE NEWTRUE NEWFALSE EMPTY_DICT/LIST/SET
        push(Tag::kOther); break;
      case ')': push(Tag::kEmptyTuple); break;                   // EMPTY_TUPLE
      case 'I': case 'L': case 'F': case 'S': case 'V': case 'P':            // text-argument pushes
        line(); push(Tag::kOther); break;
      case 'J': skip(4); push(Tag::kOther); break;               // BININT
      case 'K': skip(1); push(Tag::kOther); break;               // BININT1
      case 'M': skip(2); push(Tag::kOther); break;               // BININT2
      case 'G': skip(8); push(Tag::kOther); break;               // BINFLOAT
      case 0x8a: skip(little(1)); push(Tag::kOther); break;      // LONG1
      case 0x8b: skip(little(4)); push(Tag::kOther); break;      // LONG4
      case 'T': case 'X': case 'B':                                          // BINSTRING BINUNICODE BINBYTES
        skip(little(4)); push(Tag::kOther); break;
      case 'U': case 0x8c: case 'C':                                         // SHORT_BINSTRING/UNICODE/BYTES
        skip(little(1)); push(Tag::kOther); break;
      case 0x8d: case 0x8e: case 0x96:                                       // BINUNICODE8 BINBYTES8 BYTEARRAY8
        skip(little(8)); push(Tag::kOther); break;
      case 'Q': pop(); push(Tag::kOther); break;                 // BINPERSID
      case 'a': {  // APPEND -> MARK <value> APPENDS (LibTorch reads only the batched form)
        const Entry value = pop();
        out_.insert(value.begin, "(");
        out_ += 'e';
        return true;
      }
      case 's': {  // SETITEM -> MARK <key> <value> SETITEMS
        pop();
        const Entry key = pop();
        out_.insert(key.begin, "(");
        out_ += 'u';
        return true;
      }
      case 'e': case 'u': case 0x90: pop_mark(); break;                      // APPENDS SETITEMS ADDITEMS
      case 'l': case 't': case 'd': case 0x91:                               // LIST TUPLE DICT FROZENSET
        pop_mark(); push(Tag::kOther); break;
      case 0x85: pop(); push(Tag::kOther); break;                // TUPLE1
      case 0x86: pop(); pop(); push(Tag::kOther); break;         // TUPLE2
      case 0x87: pop(); pop(); pop(); push(Tag::kOther); break;  // TUPLE3
      case 'c': {                                                            // GLOBAL
        const std::string module = line(), name = line();
        push(module == "collections" && name == "OrderedDict" ? Tag::kOrderedDictClass : Tag::kOther);
        break;
      }
      case 'i': line(); line(); pop_mark(); push(Tag::kOther); break;  // INST
      case 'o': pop_mark(); push(Tag::kOther); break;                  // OBJ
      case 0x93: pop(); pop(); push(Tag::kOther); break;               // STACK_GLOBAL
      case 0x81: pop(); pop(); push(Tag::kOther); break;               // NEWOBJ
      case 0x92: pop(); pop(); pop(); push(Tag::kOther); break;        // NEWOBJ_EX
      case 0x82: skip(1); push(Tag::kOther); break;                    // EXT1
      case 0x83: skip(2); push(Tag::kOther); break;                    // EXT2
      case 0x84: skip(4); push(Tag::kOther); break;                    // EXT4
      case 'R': {                                                                  // REDUCE
        const Entry args = pop(), callable = pop();
        if (callable == Tag::kOrderedDictClass && args == Tag::kEmptyTuple) {
          // EMPTY_DICT MARK "class" <callable> "args" <args> SETITEMS: a dict
          // whose two marker entries load_torch_save removes.
          out_.insert(args.begin, unicode_op(kArgsKey));
          out_.insert(callable.begin, "}(" + unicode_op(kClassKey));
          out_ += 'u';
          push(Tag::kOrderedDict);
          return true;
        }
        push(Tag::kOther);
        break;
      }
      case 'b': {  // BUILD
        const Entry state = pop();
        if (top() == Tag::kOrderedDict) {
          // <dict> MARK "state" <state> SETITEMS instead of setting attributes.
          out_.insert(state.begin, "(" + unicode_op(kStateKey));
          out_ += 'u';
          return true;
        }
        break;
      }
      case 'p': memo_[line()] = top().tag; break;                       // PUT
      case 'q': memo_[std::to_string(little(1))] = top().tag; break;    // BINPUT
      case 'r': memo_[std::to_string(little(4))] = top().tag; break;    // LONG_BINPUT
      case 0x94: memo_[std::to_string(memo_count_++)] = top().tag; break;  // MEMOIZE
      case 'g': push(recall(line())); break;            // GET
      case 'h': push(recall(std::to_string(little(1)))); break;  // BINGET
      case 'j': push(recall(std::to_string(little(4)))); break;  // LONG_BINGET
      case 0x97: case 0x98: break;                                  // NEXT_BUFFER READONLY_BUFFER
      default: fail("unknown opcode 0x" + hex(op));
    }
    copy(start);
    return true;
  }
  Tag recall(const std::string& key) {
    const auto found = memo_.find(key);
    if (found == memo_.end()) fail("memo key " + key + " read before it was written");
    return found->second;
  }
  static std::string hex(unsigned char op) {
    const char* digits = "0123456789abcdef";
    return {digits[op >> 4], digits[op & 15]};
  }

  std::string_view in_;
  std::string where_;
  size_t pos_ = 0;
  std::string out_;
  std::vector<Entry> stack_;
  std::map<std::string, Tag> memo_;
  size_t begin_ = 0;  // output offset where the current opcode's product begins
  uint64_t memo_count_ = 0;
};

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// Removes the marker entries the rewrite added, at any depth.
void strip_markers(const c10::IValue& value) {
  if (value.isGenericDict()) {
    auto dict = value.toGenericDict();
    for (const char* key : {kClassKey, kArgsKey, kStateKey}) dict.erase(c10::IValue(std::string(key)));
    for (const auto& item : dict) strip_markers(item.value());
  } else if (value.isList()) {
    for (const c10::IValue item : value.toListRef()) strip_markers(item);
  } else if (value.isTuple()) {
    for (const auto& item : value.toTupleRef().elements()) strip_markers(item);
  }
}

}  // namespace

std::string ordered_dicts_as_dicts(std::string_view pickle, const std::string& where) {
  return Rewriter(pickle, where).run();
}

c10::IValue load_torch_save(const std::filesystem::path& path) {
  const std::string where = path.string();
  {
    const std::string head = read_file(path).substr(0, 4);
    if (head != std::string("PK\x03\x04", 4)) {
      throw Error(where, "not a torch.save archive (expected the zip format PyTorch writes since 1.6)");
    }
  }
  try {
    caffe2::serialize::PyTorchStreamReader reader(path.string());
    if (!reader.hasRecord("data.pkl")) throw Error(where, "zip archive without data.pkl: not a torch.save file");
    at::DataPtr pickle_ptr;
    size_t pickle_size = 0;
    std::tie(pickle_ptr, pickle_size) = reader.getRecord("data.pkl");
    const std::string program = ordered_dicts_as_dicts(
        std::string_view(static_cast<const char*>(pickle_ptr.get()), pickle_size), where + ": data.pkl");
    size_t offset = 0;
    auto read = [&](char* buffer, size_t n) {
      const size_t count = std::min(n, program.size() - offset);
      std::memcpy(buffer, program.data() + offset, count);
      offset += count;
      return count;
    };
    auto read_record = [&](const std::string& name) { return std::get<0>(reader.getRecord("data/" + name)); };
    torch::jit::Unpickler unpickler(read, nullptr, nullptr, read_record, at::Device(at::kCPU));
    unpickler.set_version(reader.version());
    c10::IValue root = unpickler.parse_ivalue();
    strip_markers(root);
    return root;
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Error(where, "cannot unpickle: " + first_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw Error(where, "cannot unpickle: " + first_line(e.what()));
  }
}

}  // namespace superpose
