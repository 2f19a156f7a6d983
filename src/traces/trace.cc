#include "traces/trace.h"

#include <zlib.h>

#include <simdjson.h>

namespace weft::traces {

std::uint64_t trace::patch_count() const {
  std::uint64_t n = 0;
  for (const auto& t : txns) n += t.patches.size();
  return n;
}

namespace {

result<std::string> read_gzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return status(error_code::invalid_argument, "cannot open " + path);
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  bool failed = n < 0;
  gzclose(f);
  if (failed) return status(error_code::corrupt_data, "cannot decompress " + path);
  return out;
}

std::string base_name(const std::string& path) {
  std::string n = path.substr(path.find_last_of('/') + 1);
  for (const char* ext : {".json.gz", ".json"})
    if (n.size() > std::string(ext).size() && n.ends_with(ext)) return n.substr(0, n.size() - std::string(ext).size());
  return n;
}

}  // namespace

result<trace> load_trace(const std::string& path) {
  auto raw = read_gzip(path);
  if (!raw.ok()) return raw.error();
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(raw.value()).get(root)) return status(error_code::corrupt_data, path + " is not JSON");
  trace t;
  t.name = base_name(path);
  std::string_view kind;
  t.concurrent = !root["kind"].get(kind) && kind == "concurrent";
  std::string_view end;
  if (root["endContent"].get(end)) return status(error_code::corrupt_data, path + ": no endContent");
  t.end_content = std::string(end);
  if (t.concurrent) {
    std::uint64_t agents = 0;
    if (root["numAgents"].get(agents)) return status(error_code::corrupt_data, path + ": no numAgents");
    t.agents = static_cast<std::uint32_t>(agents);
  }
  simdjson::dom::array txns;
  if (root["txns"].get(txns)) return status(error_code::corrupt_data, path + ": no txns");
  t.txns.reserve(txns.size());
  for (simdjson::dom::element tx : txns) {
    txn out;
    if (t.concurrent) {
      std::uint64_t agent = 0;
      simdjson::dom::array parents;
      if (tx["agent"].get(agent) || tx["parents"].get(parents)) return status(error_code::corrupt_data, path + ": bad txn");
      out.agent = static_cast<std::uint32_t>(agent);
      for (simdjson::dom::element p : parents) out.parents.push_back(static_cast<std::uint32_t>(std::uint64_t(p)));
    }
    simdjson::dom::array patches;
    if (tx["patches"].get(patches)) return status(error_code::corrupt_data, path + ": txn without patches");
    for (simdjson::dom::element p : patches) {
      simdjson::dom::array a;
      if (p.get(a) || a.size() != 3) return status(error_code::corrupt_data, path + ": bad patch");
      patch pt;
      std::uint64_t pos = 0, del = 0;
      std::string_view ins;
      if (a.at(0).get(pos) || a.at(1).get(del) || a.at(2).get(ins)) return status(error_code::corrupt_data, path + ": bad patch");
      pt.pos = pos;
      pt.del = del;
      pt.ins = std::string(ins);
      out.patches.push_back(std::move(pt));
    }
    t.txns.push_back(std::move(out));
  }
  return t;
}

}  // namespace weft::traces
