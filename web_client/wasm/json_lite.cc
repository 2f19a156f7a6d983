#include "json_lite.h"

#include <charconv>
#include <cmath>

#include "weft/unicode.h"

namespace weft::wasm {

const json* json::get(std::string_view key) const {
  for (const auto& [k, v] : fields)
    if (k == key) return &v;
  return nullptr;
}

namespace {

class reader {
 public:
  explicit reader(std::string_view s) : s_(s) {}
  result<json> document() {
    json v;
    if (!value(v, 0)) return err();
    ws();
    if (p_ != s_.size()) return status(error_code::invalid_argument, "trailing characters at " + std::to_string(p_));
    return v;
  }

 private:
  status err() const { return status(error_code::invalid_argument, "invalid JSON at " + std::to_string(p_)); }
  void ws() {
    while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\n' || s_[p_] == '\r' || s_[p_] == '\t')) ++p_;
  }
  bool lit(std::string_view w) {
    if (s_.substr(p_, w.size()) != w) return false;
    p_ += w.size();
    return true;
  }
  bool value(json& v, int depth) {
    if (depth > 64) return false;
    ws();
    if (p_ >= s_.size()) return false;
    char c = s_[p_];
    if (c == '{') return object(v, depth);
    if (c == '[') return array(v, depth);
    if (c == '"') {
      v.t = json::type::string;
      return string(v.str);
    }
    if (c == 't' && lit("true")) return v.t = json::type::boolean, v.b = true, true;
    if (c == 'f' && lit("false")) return v.t = json::type::boolean, v.b = false, true;
    if (c == 'n' && lit("null")) return v.t = json::type::null, true;
    return number(v);
  }
  bool object(json& v, int depth) {
    v.t = json::type::object;
    ++p_;
    ws();
    if (p_ < s_.size() && s_[p_] == '}') return ++p_, true;
    while (true) {
      ws();
      std::string key;
      if (p_ >= s_.size() || s_[p_] != '"' || !string(key)) return false;
      ws();
      if (p_ >= s_.size() || s_[p_] != ':') return false;
      ++p_;
      json child;
      if (!value(child, depth + 1)) return false;
      v.fields.emplace_back(std::move(key), std::move(child));
      ws();
      if (p_ >= s_.size()) return false;
      if (s_[p_] == ',') {
        ++p_;
        continue;
      }
      if (s_[p_] == '}') return ++p_, true;
      return false;
    }
  }
  bool array(json& v, int depth) {
    v.t = json::type::array;
    ++p_;
    ws();
    if (p_ < s_.size() && s_[p_] == ']') return ++p_, true;
    while (true) {
      json child;
      if (!value(child, depth + 1)) return false;
      v.items.push_back(std::move(child));
      ws();
      if (p_ >= s_.size()) return false;
      if (s_[p_] == ',') {
        ++p_;
        continue;
      }
      if (s_[p_] == ']') return ++p_, true;
      return false;
    }
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
  bool hex4(std::uint32_t& out) {
    if (p_ + 4 > s_.size()) return false;
    out = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[p_++];
      out <<= 4;
      if (c >= '0' && c <= '9') out |= static_cast<std::uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') out |= static_cast<std::uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') out |= static_cast<std::uint32_t>(c - 'A' + 10);
      else return false;
    }
    return true;
  }
  bool string(std::string& out) {
    ++p_;  // opening quote
    std::size_t start = p_;
    while (p_ < s_.size()) {
      char c = s_[p_];
      if (c == '"') {
        out.append(s_.substr(start, p_ - start));
        ++p_;
        return is_valid_utf8(out);
      }
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        ++p_;
        continue;
      }
      out.append(s_.substr(start, p_ - start));
      if (++p_ >= s_.size()) return false;
      char e = s_[p_++];
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          std::uint32_t cp;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00) {
            std::uint32_t lo;
            if (!lit("\\u") || !hex4(lo) || lo < 0xDC00 || lo > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return false;
          }
          put_utf8(out, cp);
          break;
        }
        default: return false;
      }
      start = p_;
    }
    return false;
  }
  bool number(json& v) {
    std::size_t start = p_;
    if (p_ < s_.size() && s_[p_] == '-') ++p_;
    bool digits = false, frac = false;
    while (p_ < s_.size() && s_[p_] >= '0' && s_[p_] <= '9') ++p_, digits = true;
    if (p_ < s_.size() && s_[p_] == '.') {
      frac = true;
      ++p_;
      while (p_ < s_.size() && s_[p_] >= '0' && s_[p_] <= '9') ++p_;
    }
    if (p_ < s_.size() && (s_[p_] == 'e' || s_[p_] == 'E')) {
      frac = true;
      ++p_;
      if (p_ < s_.size() && (s_[p_] == '+' || s_[p_] == '-')) ++p_;
      while (p_ < s_.size() && s_[p_] >= '0' && s_[p_] <= '9') ++p_;
    }
    if (!digits) return false;
    v.t = json::type::number;
    std::string_view text = s_.substr(start, p_ - start);
    if (!frac && text[0] != '-') {
      auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v.u);
      v.integral = ec == std::errc();
      v.num = static_cast<double>(v.u);
    } else {
      v.num = std::strtod(std::string(text).c_str(), nullptr);
    }
    return true;
  }

  std::string_view s_;
  std::size_t p_ = 0;
};

status bad(std::string m) { return status(error_code::invalid_argument, std::move(m)); }

result<std::uint64_t> uint_of(const json* j, const char* what) {
  if (!j || j->t != json::type::number || !j->integral) return bad(std::string(what) + " must be a non-negative integer");
  return j->u;
}

result<op_id> id_of(const json* j, const char* what) {
  if (!j || j->t != json::type::array || j->items.size() != 2) return bad(std::string(what) + " must be [replica, counter]");
  auto r = uint_of(&j->items[0], what);
  auto c = uint_of(&j->items[1], what);
  if (!r.ok()) return r.error();
  if (!c.ok()) return c.error();
  if (r.value() > max_replica_id || c.value() == 0 || c.value() > max_counter) return bad(std::string(what) + " out of range");
  return op_id{r.value(), c.value()};
}

}  // namespace

result<json> parse_json(std::string_view text) { return reader(text).document(); }

result<version_vector> version_from_json(const json& j) {
  if (j.t != json::type::array) return bad("a version must be an array of [replica, counter]");
  version_vector v;
  for (const json& x : j.items) {
    auto e = id_of(&x, "version entry");
    if (!e.ok()) return e.error();
    v.set(e.value().replica, e.value().counter);
  }
  return v;
}

}  // namespace weft::wasm
