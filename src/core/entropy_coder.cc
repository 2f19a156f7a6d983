#include "core/entropy_coder.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <queue>
#include <utility>
#include <vector>

namespace weft::detail {

namespace {

constexpr std::uint8_t method_raw = 0;
constexpr std::uint8_t method_huffman = 1;  // Huffman over the bytes
constexpr std::uint8_t method_lz = 2;       // LZ77 matches, then Huffman

constexpr int max_bits = 12;  // longest code
// Below this a column is stored raw: a code table would cost more than it saves.
constexpr std::size_t min_coded = 32;

// LZ77 parameters. Lengths and distances are coded as (bucket, extra bits)
// with two buckets per power of two, as deflate does.
constexpr std::size_t min_match = 4;
constexpr std::size_t max_match = 3 + 256;  // as deflate's 258: bounds the ratio near 1000:1
constexpr std::size_t window = std::size_t{1} << 22;
constexpr int chain_limit = 48;  // candidates tried per position
constexpr std::size_t literal_symbols = 256;
constexpr std::size_t length_symbols = 17;    // buckets of len - 3 in [1, 2^8]
constexpr std::size_t distance_symbols = 45;  // buckets of distance in [1, 2^22]

// ---- bucketed integers ------------------------------------------------------

// v >= 1 -> (bucket, extra bits, their count). Bucket 0 is v = 1; bucket
// 2b-1+t covers [2^b, 2^(b+1)) with t the bit below the leading one.
struct bucketed {
  std::uint32_t bucket, extra;
  int extra_bits;
};
bucketed to_bucket(std::uint32_t v) {
  const int b = std::bit_width(v) - 1;
  if (b == 0) return {0, 0, 0};
  const std::uint32_t top = (v >> (b - 1)) & 1;
  return {static_cast<std::uint32_t>(2 * b - 1) + top, v & ((std::uint32_t{1} << (b - 1)) - 1), b - 1};
}
int bucket_extra_bits(std::uint32_t bucket) { return bucket == 0 ? 0 : static_cast<int>((bucket + 1) >> 1) - 1; }
std::uint32_t from_bucket(std::uint32_t bucket, std::uint32_t extra) {
  if (bucket == 0) return 1;
  const int b = static_cast<int>((bucket + 1) >> 1);
  return (std::uint32_t{1} << b) | (((bucket + 1) & 1) << (b - 1)) | extra;
}

// ---- Huffman codes ----------------------------------------------------------

// Code lengths for `freq`, none longer than max_bits: a plain Huffman tree,
// rebuilt with flattened frequencies until it is shallow enough (rare, and
// close to optimal for alphabets this small).
std::vector<std::uint8_t> code_lengths(std::vector<std::uint64_t> freq) {
  const std::size_t n = freq.size();
  std::vector<std::uint8_t> len(n, 0);
  std::size_t used = 0;
  for (auto f : freq) used += f > 0;
  if (used == 1) {
    for (std::size_t s = 0; s < n; ++s)
      if (freq[s]) len[s] = 1;
    return len;
  }
  if (used == 0) return len;
  while (true) {
    std::vector<std::int32_t> parent(2 * n, -1);
    using item = std::pair<std::uint64_t, std::int32_t>;
    std::priority_queue<item, std::vector<item>, std::greater<>> heap;
    for (std::size_t s = 0; s < n; ++s)
      if (freq[s]) heap.emplace(freq[s], static_cast<std::int32_t>(s));
    auto next = static_cast<std::int32_t>(n);
    while (heap.size() > 1) {
      auto [wa, a] = heap.top();
      heap.pop();
      auto [wb, b] = heap.top();
      heap.pop();
      parent[static_cast<std::size_t>(a)] = parent[static_cast<std::size_t>(b)] = next;
      heap.emplace(wa + wb, next++);
    }
    int deepest = 0;
    for (std::size_t s = 0; s < n; ++s) {
      if (!freq[s]) continue;
      int d = 0;
      for (auto k = static_cast<std::int32_t>(s); parent[static_cast<std::size_t>(k)] >= 0;
           k = parent[static_cast<std::size_t>(k)])
        ++d;
      len[s] = static_cast<std::uint8_t>(d);
      deepest = std::max(deepest, d);
    }
    if (deepest <= max_bits) return len;
    for (auto& f : freq)
      if (f) f = (f >> 1) | 1;
  }
}

// Canonical codes (by length, then symbol), bit-reversed for LSB-first
// streams. Returns false when the lengths over-subscribe the code space.
bool canonical_codes(const std::vector<std::uint8_t>& len, std::vector<std::uint16_t>* codes) {
  std::uint32_t count[max_bits + 1] = {};
  std::uint32_t kraft = 0;
  for (std::uint8_t l : len) {
    if (!l) continue;
    ++count[l];
    kraft += std::uint32_t{1} << (max_bits - l);
  }
  if (kraft > (std::uint32_t{1} << max_bits)) return false;
  std::uint32_t next[max_bits + 1] = {};
  std::uint32_t code = 0;
  for (int l = 1; l <= max_bits; ++l) {
    code = (code + count[l - 1]) << 1;
    next[l] = code;
  }
  codes->assign(len.size(), 0);
  for (std::size_t s = 0; s < len.size(); ++s) {
    if (!len[s]) continue;
    const std::uint32_t c = next[len[s]]++;
    std::uint32_t r = 0;
    for (int b = 0; b < len[s]; ++b) r |= ((c >> b) & 1) << (len[s] - 1 - b);
    (*codes)[s] = static_cast<std::uint16_t>(r);
  }
  return true;
}

struct huffman {
  std::vector<std::uint8_t> len;
  std::vector<std::uint16_t> code;
  explicit huffman(std::vector<std::uint64_t> freq) : len(code_lengths(std::move(freq))) { canonical_codes(len, &code); }
  std::uint64_t cost(const std::vector<std::uint64_t>& freq) const {
    std::uint64_t bits = 0;
    for (std::size_t s = 0; s < freq.size(); ++s) bits += freq[s] * len[s];
    return bits;
  }
};

// Code lengths as written: varint symbol count (trailing unused symbols
// dropped), then one nibble per symbol.
void put_lengths(byte_writer& w, const std::vector<std::uint8_t>& len) {
  std::size_t n = len.size();
  while (n > 0 && len[n - 1] == 0) --n;
  w.varint(n);
  for (std::size_t s = 0; s < n; s += 2) w.u8(static_cast<std::uint8_t>(len[s] | (s + 1 < n ? len[s + 1] << 4 : 0)));
}

// A decoding table: one lookup per symbol, entry = symbol << 4 | code length
// (0: no symbol has this prefix). Sized for the longest code in use.
struct decode_table {
  std::vector<std::uint16_t> entry;
  std::uint64_t mask = 0;
  bool read(byte_reader& in, std::size_t alphabet) {
    const std::uint64_t n = in.varint();
    if (!in.ok() || n > alphabet) return false;
    std::string_view packed = in.bytes((n + 1) / 2);
    if (!in.ok()) return false;
    std::vector<std::uint8_t> len(n);
    int longest = 0;
    for (std::uint64_t s = 0; s < n; ++s) {
      const int l = static_cast<std::uint8_t>(packed[s / 2]) >> (s % 2 ? 4 : 0) & 15;
      if (l > max_bits) return false;
      len[s] = static_cast<std::uint8_t>(l);
      longest = std::max(longest, l);
    }
    std::vector<std::uint16_t> codes;
    if (!canonical_codes(len, &codes)) return false;
    const std::size_t size = std::size_t{1} << longest;
    entry.assign(size, 0);
    mask = size - 1;
    for (std::size_t s = 0; s < n; ++s) {
      if (!len[s]) continue;
      const auto e = static_cast<std::uint16_t>(s << 4 | len[s]);
      for (std::size_t k = codes[s]; k < size; k += std::size_t{1} << len[s]) entry[k] = e;
    }
    return true;
  }
};

// ---- bit streams ------------------------------------------------------------

class bit_writer {
 public:
  explicit bit_writer(std::string& out) : out_(out) {}
  void put(std::uint32_t v, int n) {  // n <= 24
    acc_ |= std::uint64_t{v} << n_;
    n_ += n;
    while (n_ >= 8) {
      out_.push_back(static_cast<char>(acc_ & 0xFF));
      acc_ >>= 8;
      n_ -= 8;
    }
  }
  void flush() {
    if (n_ > 0) out_.push_back(static_cast<char>(acc_ & 0xFF));
    acc_ = 0;
    n_ = 0;
  }

 private:
  std::string& out_;
  std::uint64_t acc_ = 0;
  int n_ = 0;
};

// LSB-first reader. Bits of `bits` at or above `nbits` are zero or already
// the stream's next bits, so refills may overlap.
class bit_reader {
 public:
  explicit bit_reader(std::string_view s) : src_(reinterpret_cast<const std::uint8_t*>(s.data())), n_(s.size()) {}
  void refill() {
    if (pos_ + 8 <= n_) {
      std::uint64_t w;
      std::memcpy(&w, src_ + pos_, 8);  // little-endian hosts only (x86-64, wasm)
      bits_ |= w << nbits_;
      pos_ += static_cast<std::size_t>((63 - nbits_) >> 3);
      nbits_ |= 56;
    } else {
      while (nbits_ <= 56 && pos_ < n_) {
        bits_ |= std::uint64_t{src_[pos_++]} << nbits_;
        nbits_ += 8;
      }
    }
  }
  int available() const { return nbits_; }
  // The next symbol of `t`, or -1 when the bits match no code or run out.
  int symbol(const decode_table& t) {
    const std::uint16_t e = t.entry[bits_ & t.mask];
    const int l = e & 15;
    if (l == 0 || l > nbits_) return -1;
    bits_ >>= l;
    nbits_ -= l;
    return e >> 4;
  }
  bool take(int n, std::uint32_t* v) {
    if (n > nbits_) return false;
    *v = static_cast<std::uint32_t>(bits_ & ((std::uint64_t{1} << n) - 1));
    bits_ >>= n;
    nbits_ -= n;
    return true;
  }
  // Every byte used and the last one's padding zero (what the encoder
  // writes; a decoder that allowed slack would accept trailing garbage).
  bool finished() const { return pos_ == n_ && nbits_ < 8 && bits_ == 0; }

 private:
  const std::uint8_t* src_;
  std::size_t n_, pos_ = 0;
  std::uint64_t bits_ = 0;
  int nbits_ = 0;
};

// ---- method 1: Huffman over bytes -------------------------------------------

void encode_huffman(std::string_view column, byte_writer& w) {
  std::vector<std::uint64_t> freq(256, 0);
  for (char c : column) ++freq[static_cast<std::uint8_t>(c)];
  const huffman h(freq);
  put_lengths(w, h.len);
  std::string bits;
  bits.reserve(h.cost(freq) / 8 + 1);
  bit_writer bw(bits);
  for (char c : column) {
    const auto s = static_cast<std::uint8_t>(c);
    bw.put(h.code[s], h.len[s]);
  }
  bw.flush();
  w.varint(bits.size());
  w.bytes(bits);
}

bool decode_huffman(byte_reader& in, std::uint64_t size, std::string* column) {
  decode_table t;
  if (!t.read(in, 256)) return false;
  const std::uint64_t coded = in.varint();
  if (!in.ok() || coded > in.remaining() || size > coded * 8) return false;
  column->resize(size);
  bit_reader br(in.bytes(coded));
  for (char& c : *column) {
    if (br.available() < max_bits) br.refill();
    const int s = br.symbol(t);
    if (s < 0) return false;
    c = static_cast<char>(s);
  }
  return br.finished();
}

// ---- method 2: LZ77 + Huffman -----------------------------------------------

struct token {
  std::uint32_t length;  // 0: literal
  std::uint32_t value;   // the byte, or the distance
};

// Greedy parse with one step of lazy matching, hash chains over 4 bytes.
std::vector<token> parse_lz(std::string_view in) {
  const auto* s = reinterpret_cast<const std::uint8_t*>(in.data());
  const std::size_t n = in.size();
  constexpr int hash_bits = 16;
  std::vector<std::int32_t> head(std::size_t{1} << hash_bits, -1), prev(n, -1);
  auto hash = [&](std::size_t i) {
    std::uint32_t v;
    std::memcpy(&v, s + i, 4);
    return (v * 2654435761u) >> (32 - hash_bits);
  };
  auto insert = [&](std::size_t i) {
    if (i + min_match > n) return;
    const std::uint32_t h = hash(i);
    prev[i] = head[h];
    head[h] = static_cast<std::int32_t>(i);
  };
  auto find = [&](std::size_t i) -> token {
    token best{0, 0};
    if (i + min_match > n) return best;
    const std::size_t limit = std::min(max_match, n - i);
    std::int32_t cand = head[hash(i)];
    for (int tries = 0; cand >= 0 && i - static_cast<std::size_t>(cand) <= window && tries < chain_limit; ++tries) {
      const auto c = static_cast<std::size_t>(cand);
      if (s[c + best.length] == s[i + best.length]) {
        std::size_t l = 0;
        while (l < limit && s[c + l] == s[i + l]) ++l;
        if (l > best.length) {
          best = token{static_cast<std::uint32_t>(l), static_cast<std::uint32_t>(i - c)};
          if (l == limit) break;
        }
      }
      cand = prev[c];
    }
    if (best.length < min_match) best = token{0, 0};
    return best;
  };
  std::vector<token> out;
  out.reserve(n / 4);
  std::size_t i = 0;
  while (i < n) {
    token m = find(i);
    insert(i);
    if (m.length > 0 && m.length < 64 && i + 1 < n && find(i + 1).length > m.length) m.length = 0;
    if (m.length == 0) {
      out.push_back(token{0, s[i]});
      ++i;
      continue;
    }
    out.push_back(m);
    for (std::size_t j = i + 1; j < i + m.length; ++j) insert(j);
    i += m.length;
  }
  return out;
}

void encode_lz(std::string_view column, byte_writer& w) {
  const std::vector<token> tokens = parse_lz(column);
  std::vector<std::uint64_t> lit(literal_symbols + length_symbols, 0), dist(distance_symbols, 0);
  for (const token& t : tokens) {
    if (t.length == 0) {
      ++lit[t.value];
    } else {
      ++lit[literal_symbols + to_bucket(t.length - 3).bucket];
      ++dist[to_bucket(t.value).bucket];
    }
  }
  const huffman hl(lit), hd(dist);
  put_lengths(w, hl.len);
  put_lengths(w, hd.len);
  std::string bits;
  bit_writer bw(bits);
  for (const token& t : tokens) {
    if (t.length == 0) {
      bw.put(hl.code[t.value], hl.len[t.value]);
      continue;
    }
    const bucketed l = to_bucket(t.length - 3), d = to_bucket(t.value);
    bw.put(hl.code[literal_symbols + l.bucket], hl.len[literal_symbols + l.bucket]);
    bw.put(l.extra, l.extra_bits);
    bw.put(hd.code[d.bucket], hd.len[d.bucket]);
    bw.put(d.extra, d.extra_bits);
  }
  bw.flush();
  w.varint(bits.size());
  w.bytes(bits);
}

bool decode_lz(byte_reader& in, std::uint64_t size, std::string* column) {
  decode_table tl, td;
  if (!tl.read(in, literal_symbols + length_symbols) || !td.read(in, distance_symbols)) return false;
  const std::uint64_t coded = in.varint();
  // A match of at most max_match bytes takes at least two bits.
  if (!in.ok() || coded > in.remaining() || size > coded * 4 * max_match) return false;
  column->resize(size);
  bit_reader br(in.bytes(coded));
  auto* out = reinterpret_cast<std::uint8_t*>(column->data());
  std::size_t at = 0;
  while (at < size) {
    // A length symbol and its extra bits take at most 12 + 7 bits, a
    // distance's 12 + 21: refills keep 40 at hand while input lasts.
    if (br.available() < 40) br.refill();
    const int s = br.symbol(tl);
    if (s < 0) return false;
    if (s < static_cast<int>(literal_symbols)) {
      out[at++] = static_cast<std::uint8_t>(s);
      continue;
    }
    const auto lb = static_cast<std::uint32_t>(s) - literal_symbols;
    std::uint32_t extra = 0;
    if (!br.take(bucket_extra_bits(lb), &extra)) return false;
    const std::size_t len = from_bucket(lb, extra) + 3;
    if (br.available() < 40) br.refill();
    const int ds = br.symbol(td);
    if (ds < 0 || !br.take(bucket_extra_bits(static_cast<std::uint32_t>(ds)), &extra)) return false;
    const std::size_t d = from_bucket(static_cast<std::uint32_t>(ds), extra);
    // Only what the encoder makes: the format's limits, not the buckets'.
    if (len > max_match || d > window || d > at || len > size - at) return false;
    if (d >= len) {
      std::memcpy(out + at, out + at - d, len);
    } else {
      for (std::size_t k = 0; k < len; ++k) out[at + k] = out[at + k - d];  // overlapping: repeats
    }
    at += len;
  }
  return br.finished();
}

}  // namespace

void put_column(byte_writer& out, std::string_view column) {
  out.varint(column.size());
  std::string best;
  if (column.size() >= min_coded) {
    // Both codings, the smaller kept: columns differ (text gains from
    // matches, flags and lengths from the entropy code alone).
    for (std::uint8_t method : {method_huffman, method_lz}) {
      byte_writer w;
      w.u8(method);
      if (method == method_huffman)
        encode_huffman(column, w);
      else
        encode_lz(column, w);
      if (best.empty() || w.str().size() < best.size()) best = std::move(w.str());
    }
  }
  if (!best.empty() && best.size() < column.size() + 1) {
    out.bytes(best);
    return;
  }
  out.u8(method_raw);
  out.bytes(column);
}

bool get_column(byte_reader& in, std::string* column, std::size_t max_bytes) {
  const std::uint64_t size = in.varint();
  const std::uint8_t method = in.u8();
  if (!in.ok() || size > max_bytes) return false;
  if (method == method_raw) {
    std::string_view raw = in.bytes(size);
    if (!in.ok()) return false;
    column->assign(raw);
    return true;
  }
  if (method == method_huffman) return decode_huffman(in, size, column);
  if (method == method_lz) return decode_lz(in, size, column);
  return false;
}

}  // namespace weft::detail
