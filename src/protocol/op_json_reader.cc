#include "protocol/op_json_reader.h"

#include <charconv>

#include "weft/protocol.h"
#include "weft/unicode.h"

namespace weft::protocol {

namespace {

class scanner {
 public:
  explicit scanner(std::string_view s) : s_(s) {}
  bool failed() const { return failed_; }
  std::size_t pos() const { return p_; }
  void fail() { failed_ = true; }
  void ws() {
    while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\n' || s_[p_] == '\r' || s_[p_] == '\t')) ++p_;
  }
  bool peek(char c) {
    ws();
    return p_ < s_.size() && s_[p_] == c;
  }
  bool eat(char c) {
    if (!peek(c)) return false;
    ++p_;
    return true;
  }
  void expect(char c) {
    if (!eat(c)) fail();
  }
  bool null_literal() {
    ws();
    if (s_.substr(p_, 4) == "null") {
      p_ += 4;
      return true;
    }
    return false;
  }
  bool at(char c) const { return p_ < s_.size() && s_[p_] == c; }
  // Skips one JSON value of any kind, validating it; nesting of any depth
  // without recursion (the stack of open containers is a string).
  void skip_value() {
    std::string open, buf;
    for (;;) {
      // At a value.
      ws();
      if (p_ >= s_.size()) return fail();
      const char c = s_[p_];
      if (c == '{' || c == '[') {
        ++p_;
        if (!eat(c == '{' ? '}' : ']')) {
          open.push_back(c);
          if (c == '{') member_key(buf);
          if (failed_) return;
          continue;
        }
      } else if (c == '"') {
        str(buf);
      } else if (c == 't') {
        literal("true");
      } else if (c == 'f') {
        literal("false");
      } else if (c == 'n') {
        literal("null");
      } else {
        number();
      }
      if (failed_) return;
      // After a value: a separator, or the ends of containers.
      for (;;) {
        if (open.empty()) return;
        const char top = open.back();
        if (eat(',')) {
          if (top == '{') member_key(buf);
          if (failed_) return;
          break;
        }
        if (!eat(top == '{' ? '}' : ']')) return fail();
        open.pop_back();
      }
    }
  }
  std::uint64_t uint() {
    ws();
    std::uint64_t v = 0;
    // "-0" is JSON's other spelling of zero (found by the differential fuzzer).
    if (s_.substr(p_, 2) == "-0" && (p_ + 2 == s_.size() || s_[p_ + 2] < '0' || s_[p_ + 2] > '9')) {
      p_ += 2;
      if (p_ < s_.size() && (s_[p_] == '.' || s_[p_] == 'e' || s_[p_] == 'E')) fail();
      return 0;
    }
    auto [end, ec] = std::from_chars(s_.data() + p_, s_.data() + s_.size(), v);
    // JSON has no leading zeros ("007"): refuse them as every JSON parser does.
    if (ec != std::errc() || end == s_.data() + p_ || (s_[p_] == '0' && end - (s_.data() + p_) > 1)) {
      fail();
      return 0;
    }
    p_ = static_cast<std::size_t>(end - s_.data());
    if (p_ < s_.size() && (s_[p_] == '.' || s_[p_] == 'e' || s_[p_] == 'E')) fail();
    return v;
  }
  // A string: a view into the input when it has no escapes, else decoded into `buf`.
  std::string_view str(std::string& buf) {
    ws();
    if (p_ >= s_.size() || s_[p_] != '"') {
      fail();
      return {};
    }
    std::size_t start = ++p_;
    while (p_ < s_.size() && s_[p_] != '"' && s_[p_] != '\\') {
      if (static_cast<unsigned char>(s_[p_]) < 0x20) {
        fail();
        return {};
      }
      ++p_;
    }
    if (p_ < s_.size() && s_[p_] == '"') return s_.substr(start, p_++ - start);
    buf.assign(s_.substr(start, p_ - start));
    while (p_ < s_.size()) {
      char c = s_[p_++];
      if (c == '"') return buf;
      if (static_cast<unsigned char>(c) < 0x20) break;
      if (c != '\\') {
        buf.push_back(c);
        continue;
      }
      if (p_ >= s_.size()) break;
      char e = s_[p_++];
      switch (e) {
        case '"': buf.push_back('"'); break;
        case '\\': buf.push_back('\\'); break;
        case '/': buf.push_back('/'); break;
        case 'b': buf.push_back('\b'); break;
        case 'f': buf.push_back('\f'); break;
        case 'n': buf.push_back('\n'); break;
        case 'r': buf.push_back('\r'); break;
        case 't': buf.push_back('\t'); break;
        case 'u': {
          std::uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {
            if (s_.substr(p_, 2) != "\\u") return fail(), std::string_view{};
            p_ += 2;
            std::uint32_t lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) return fail(), std::string_view{};
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return fail(), std::string_view{};
          }
          put_utf8(buf, cp);
          break;
        }
        default: return fail(), std::string_view{};
      }
    }
    fail();
    return {};
  }

 private:
  std::uint32_t hex4() {
    if (p_ + 4 > s_.size()) return fail(), 0;
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[p_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<std::uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<std::uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<std::uint32_t>(c - 'A' + 10);
      else return fail(), 0;
    }
    return v;
  }
  static bool digit(char c) { return c >= '0' && c <= '9'; }
  void literal(std::string_view word) {
    if (s_.substr(p_, word.size()) != word) return fail();
    p_ += word.size();
  }
  // A JSON number of any size (RFC 8259 grammar), not converted.
  void number() {
    std::size_t q = p_;
    const std::size_t n = s_.size();
    if (q < n && s_[q] == '-') ++q;
    if (q >= n || !digit(s_[q])) return fail();
    if (s_[q++] != '0')
      while (q < n && digit(s_[q])) ++q;
    if (q < n && s_[q] == '.') {
      if (++q >= n || !digit(s_[q])) return fail();
      while (q < n && digit(s_[q])) ++q;
    }
    if (q < n && (s_[q] == 'e' || s_[q] == 'E')) {
      if (++q < n && (s_[q] == '+' || s_[q] == '-')) ++q;
      if (q >= n || !digit(s_[q])) return fail();
      while (q < n && digit(s_[q])) ++q;
    }
    p_ = q;
  }
  void member_key(std::string& buf) {
    str(buf);
    expect(':');
  }
  static void put_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  std::string_view s_;
  std::size_t p_ = 0;
  bool failed_ = false;
};

bool read_id(scanner& sc, op_id* out) {
  sc.expect('[');
  out->replica = sc.uint();
  sc.expect(',');
  out->counter = sc.uint();
  sc.expect(']');
  return !sc.failed() && out->replica <= max_replica_id && out->counter >= 1 && out->counter <= max_counter;
}

status bad(const scanner& sc, const char* what) {
  return status(error_code::invalid_argument, std::string(what) + " (at byte " + std::to_string(sc.pos()) + ")");
}

}  // namespace

status read_ops(std::string_view json, std::vector<operation>* out) {
  scanner sc(json);
  std::string key_buf, text_buf;
  sc.expect('[');
  if (sc.failed()) return bad(sc, "ops must be a JSON array");
  if (sc.eat(']')) {
    sc.ws();
    return sc.pos() == json.size() ? status() : bad(sc, "trailing characters");
  }
  do {
    sc.expect('{');
    if (sc.failed()) return bad(sc, "an operation must be an object");
    operation op;
    std::string_view kind;
    std::string kind_buf;
    bool has_id = false, has_text = false, has_count = false, has_targets = false;
    unsigned seen = 0;  // one bit per known key: a key given twice is an error
    auto first_time = [&seen](unsigned bit) {
      if (seen & bit) return false;
      seen |= bit;
      return true;
    };
    if (!sc.peek('}')) {
      do {
        std::string_view key = sc.str(key_buf);
        sc.expect(':');
        if (sc.failed()) return bad(sc, "malformed operation");
        const unsigned bit = key == "kind" ? 1u : key == "id" ? 2u : key == "left" ? 4u : key == "right" ? 8u
                           : key == "text" ? 16u : key == "count" ? 32u : key == "targets" ? 64u : 0u;
        if (bit && !first_time(bit))
          return bad(sc, ("field \"" + std::string(key) + "\" given twice in an operation").c_str());
        if (key == "kind") {
          kind = sc.str(kind_buf);
          if (kind.data() == kind_buf.data()) kind_buf = std::string(kind), kind = kind_buf;
        } else if (key == "id") {
          has_id = read_id(sc, &op.id);
          if (!has_id) return bad(sc, "operation id must be [replica, counter] in range");
        } else if (key == "left" || key == "right") {
          if (sc.null_literal()) continue;
          op_id o;
          if (!read_id(sc, &o)) return bad(sc, "origin must be [replica, counter] in range");
          (key == "left" ? op.origin_left : op.origin_right) = o;
        } else if (key == "text") {
          op.text = std::string(sc.str(text_buf));
          has_text = true;
        } else if (key == "count") {
          op.count = sc.uint();
          has_count = true;
        } else if (key == "targets") {
          has_targets = true;
          sc.expect('[');
          if (!sc.peek(']')) {
            do {
              sc.expect('[');
              id_span t;
              t.replica = sc.uint();
              sc.expect(',');
              t.counter = sc.uint();
              sc.expect(',');
              t.length = sc.uint();
              sc.expect(']');
              if (sc.failed() || t.replica > max_replica_id || t.counter == 0 || t.counter > max_counter ||
                  t.length == 0 || t.length > max_counter)
                return bad(sc, "erase targets must be [replica, counter, length] in range");
              op.targets.push_back(t);
            } while (sc.eat(','));
          }
          sc.expect(']');
        } else {
          return bad(sc, ("unknown field \"" + std::string(key) + "\" in an operation").c_str());
        }
        if (sc.failed()) return bad(sc, "malformed operation");
      } while (sc.eat(','));
    }
    sc.expect('}');
    if (sc.failed()) return bad(sc, "malformed operation");
    if (!has_id) return bad(sc, "operation without \"id\"");
    if (kind == "insert") {
      op.kind = op_kind::insert;
      if (!has_text || has_count || has_targets || op.text.empty() || !is_valid_utf8(op.text))
        return bad(sc, "insert needs non-empty UTF-8 \"text\" and nothing else");
    } else if (kind == "tombstone") {
      op.kind = op_kind::tombstone;
      if (!has_count || has_text || has_targets || op.count == 0 || op.count > max_counter)
        return bad(sc, "tombstone needs a \"count\" in range and nothing else");
    } else if (kind == "erase") {
      op.kind = op_kind::erase;
      if (!has_targets || has_text || has_count || op.targets.empty() || (seen & (4u | 8u)))
        return bad(sc, "erase needs non-empty \"targets\" and nothing else");
    } else {
      return bad(sc, "unknown or missing operation kind");
    }
    out->push_back(std::move(op));
  } while (sc.eat(','));
  sc.expect(']');
  sc.ws();
  if (sc.failed() || sc.pos() != json.size()) return bad(sc, "malformed ops array");
  return {};
}

}  // namespace weft::protocol

namespace weft::protocol {

status read_version(std::string_view json, version_vector* out) {
  scanner sc(json);
  sc.expect('[');
  if (!sc.failed() && !sc.peek(']')) {
    do {
      op_id e;
      if (!read_id(sc, &e)) return bad(sc, "a version must be [[replica, counter], ...]");
      if (out->get(e.replica) != 0) return bad(sc, "a replica is listed twice in a version");
      out->set(e.replica, e.counter);
    } while (sc.eat(','));
  }
  sc.expect(']');
  sc.ws();
  if (sc.failed() || sc.pos() != json.size()) return bad(sc, "a version must be [[replica, counter], ...]");
  return {};
}

}  // namespace weft::protocol

namespace weft::protocol {

// The public JSON string reader (weft/protocol.h): the scanner's str(), the
// one string reader of the op parser, plus the UTF-8 check read_ops applies
// to text.
std::size_t read_json_string(std::string_view json, std::string* out) {
  scanner sc(json);
  std::string buf;
  std::string_view s = sc.str(buf);
  if (sc.failed() || !is_valid_utf8(s)) return 0;
  out->assign(s);
  return sc.pos();
}

bool read_json_string_field(std::string_view object_json, std::string_view key, std::string* out) {
  // Raw bytes >= 0x80 may only stand in string literals, so checking the
  // whole text is checking every literal (escapes decode to valid UTF-8).
  if (!is_valid_utf8(object_json)) return false;
  scanner sc(object_json);
  std::string key_buf, value_buf, value;
  bool found = false;  // the last `key` seen had a string value
  sc.expect('{');
  if (!sc.failed() && !sc.peek('}')) {
    do {
      const bool match = sc.str(key_buf) == key;
      sc.expect(':');
      if (sc.failed()) return false;
      sc.ws();
      if (sc.at('"')) {
        std::string_view v = sc.str(value_buf);
        if (match) value.assign(v), found = true;
      } else {
        sc.skip_value();
        if (match) found = false;
      }
      if (sc.failed()) return false;
    } while (sc.eat(','));
  }
  sc.expect('}');
  sc.ws();
  if (sc.failed() || sc.pos() != object_json.size() || !found) return false;
  *out = std::move(value);
  return true;
}

}  // namespace weft::protocol
