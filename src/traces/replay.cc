#include "traces/replay.h"

#include <algorithm>

namespace weft::traces {

namespace {
status apply_patches(document& doc, const std::vector<patch>& patches, std::vector<operation>* ops,
                     std::uint64_t offset) {
  for (const patch& p : patches) {
    if (p.del > 0) {
      auto r = doc.erase(offset + p.pos, p.del);
      if (!r.ok()) return r.error();
      if (ops) ops->push_back(std::move(r.value()));
    }
    if (!p.ins.empty()) {
      auto r = doc.insert(offset + p.pos, p.ins);
      if (!r.ok()) return r.error();
      if (ops) ops->push_back(std::move(r.value()));
    }
  }
  return {};
}
}  // namespace

status replay_local(const trace& t, document& doc, std::vector<operation>* ops, std::uint64_t offset) {
  for (const txn& x : t.txns) {
    status s = apply_patches(doc, x.patches, ops, offset);
    if (!s.ok()) return s;
  }
  return {};
}

result<concurrent_replay> replay_concurrent(const trace& t) {
  const std::uint32_t n = t.agents;
  concurrent_replay out;
  for (std::uint32_t a = 0; a < n; ++a) out.replicas.emplace_back(replica_id{1000 + a});
  out.txn_ops.resize(t.txns.size());
  std::vector<std::vector<std::uint32_t>> agent_txns(n);
  std::vector<std::vector<std::uint32_t>> version(t.txns.size());  // per txn: txns of each agent included
  std::vector<std::vector<std::uint32_t>> applied(n, std::vector<std::uint32_t>(n, 0));
  for (std::size_t i = 0; i < t.txns.size(); ++i) {
    const txn& x = t.txns[i];
    if (x.agent >= n) return status(error_code::invalid_argument, "txn agent out of range");
    std::vector<std::uint32_t> v(n, 0);
    for (std::uint32_t p : x.parents) {
      if (p >= i) return status(error_code::invalid_argument, "txn parent is not earlier");
      for (std::uint32_t b = 0; b < n; ++b) v[b] = std::max(v[b], version[p][b]);
    }
    document& doc = out.replicas[x.agent];
    for (std::uint32_t b = 0; b < n; ++b) {
      for (std::uint32_t k = applied[x.agent][b]; k < v[b]; ++k) {
        for (const operation& op : out.txn_ops[agent_txns[b][k]]) {
          auto r = doc.apply(op);
          if (!r.ok()) return r.error();
        }
      }
      applied[x.agent][b] = std::max(applied[x.agent][b], v[b]);
    }
    if (doc.pending_ops() != 0) return status(error_code::invalid_operation, "ops still buffered before a txn");
    status s = apply_patches(doc, x.patches, &out.txn_ops[i], 0);
    if (!s.ok()) return s;
    agent_txns[x.agent].push_back(static_cast<std::uint32_t>(i));
    v[x.agent] = static_cast<std::uint32_t>(agent_txns[x.agent].size());
    applied[x.agent][x.agent] = v[x.agent];
    version[i] = std::move(v);
  }
  return out;
}

}  // namespace weft::traces
