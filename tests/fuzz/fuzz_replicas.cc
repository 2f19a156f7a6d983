// libFuzzer target: the core driven by arbitrary edit and delivery sequences.
// The input is a program for three replicas (local inserts and erases,
// delivering, duplicating and dropping ops, syncing, snapshot reloads); after
// every step each replica's invariants hold, and at the end, after full sync,
// all three have the same text and version.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "weft/document.h"

namespace {
struct reader {
  const std::uint8_t* p;
  std::size_t n;
  std::uint8_t next() { return n ? (--n, *p++) : 0; }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  reader in{data, size};
  std::vector<weft::document> docs;
  for (int i = 0; i < 3; ++i) docs.emplace_back(weft::replica_id{100u + static_cast<unsigned>(i)});
  std::vector<std::vector<weft::operation>> inbox(3);
  static const char* const texts[] = {"a", "bc", "é", "😀", "\n", "xyz"};
  for (int step = 0; step < 200 && in.n > 0; ++step) {
    std::uint8_t cmd = in.next();
    std::size_t k = cmd % 3;
    weft::document& d = docs[k];
    switch ((cmd / 3) % 6) {
      case 0:
      case 1: {  // local insert, sent to the others
        auto op = d.insert(d.length() ? in.next() % (d.length() + 1) : 0, texts[in.next() % 6]);
        if (!op.ok()) std::abort();
        for (std::size_t j = 0; j < 3; ++j)
          if (j != k) inbox[j].push_back(op.value());
        break;
      }
      case 2: {  // local erase
        if (d.length() == 0) break;
        std::uint64_t pos = in.next() % d.length();
        auto op = d.erase(pos, 1 + in.next() % std::min<std::uint64_t>(3, d.length() - pos));
        if (!op.ok()) std::abort();
        for (std::size_t j = 0; j < 3; ++j)
          if (j != k) inbox[j].push_back(op.value());
        break;
      }
      case 3: {  // deliver (or duplicate, or drop) one op, in any order
        if (inbox[k].empty()) break;
        std::size_t i = in.next() % inbox[k].size();
        std::uint8_t fate = in.next() % 4;
        if (fate != 0 && !d.apply(inbox[k][i]).ok()) std::abort();
        if (fate != 1) inbox[k].erase(inbox[k].begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
      case 4: {  // sync from another replica
        for (const auto& op : docs[in.next() % 3].ops_since(d.version()))
          if (!d.apply(op).ok()) std::abort();
        break;
      }
      case 5: {  // reload from a snapshot
        auto re = weft::document::decode_snapshot(d.encode_snapshot(), d.replica());
        if (!re.ok() || re.value().text() != d.text()) std::abort();
        d = std::move(re.value());
        break;
      }
    }
    if (!d.check_invariants().empty()) std::abort();
  }
  for (int pass = 0; pass < 2; ++pass)
    for (auto& a : docs)
      for (auto& b : docs)
        for (const auto& op : b.ops_since(a.version()))
          if (!a.apply(op).ok()) std::abort();
  for (auto& d : docs)
    if (d.text() != docs[0].text() || !(d.version() == docs[0].version())) std::abort();
  return 0;
}
