#include "server/metrics.h"

#include <fmt/format.h>

namespace weft::server {

void metrics::observe_commit(double seconds, std::size_t writes) {
  std::lock_guard<std::mutex> lock(mu_);
  std::size_t i = 0;
  while (i < bounds_.size() && seconds > bounds_[i]) ++i;
  ++buckets_[i];
  sum_ += seconds;
  ++count_;
  writes_ += writes;
}

std::string metrics::render() const {
  std::string out;
  auto it = std::back_inserter(out);
  auto gauge = [&](const char* name, const char* help, std::int64_t v) {
    fmt::format_to(it, "# HELP {0} {1}\n# TYPE {0} gauge\n{0} {2}\n", name, help, v);
  };
  auto counter = [&](const char* name, const char* help, std::uint64_t v) {
    fmt::format_to(it, "# HELP {0} {1}\n# TYPE {0} counter\n{0} {2}\n", name, help, v);
  };
  gauge("weft_connections", "Open WebSocket connections.", connections.load());
  gauge("weft_documents_loaded", "Documents held in memory.", documents_loaded.load());
  counter("weft_ops_applied_total", "Operations applied to documents.", ops_applied.load());
  counter("weft_messages_received_total", "WebSocket messages received.", messages_received.load());
  counter("weft_messages_sent_total", "WebSocket messages sent.", messages_sent.load());
  counter("weft_bytes_sent_total", "WebSocket payload bytes sent.", bytes_sent.load());
  counter("weft_errors_sent_total", "Error messages sent to clients.", errors_sent.load());
  counter("weft_slow_consumers_dropped_total", "Connections closed because their send queue was full.",
          slow_consumers_dropped.load());
  counter("weft_auth_failures_total", "Connections refused for a missing, invalid or expired token.",
          auth_failures.load());
  counter("weft_connections_refused_total", "Connections refused: too many from one address, or a foreign Origin.",
          connections_refused.load());
  counter("weft_rate_limited_total", "Connections closed for sending messages too fast.", rate_limited.load());
  counter("weft_idle_timeouts_total", "Connections closed for staying silent through a ping.", idle_timeouts.load());
  counter("weft_replicated_ops_applied_total", "Operations from other nodes applied here.",
          replicated_ops_applied.load());
  counter("weft_concurrent_ops_merged_total",
          "Operations from other nodes concurrent with an edit made here to the same document (the conflict rate): "
          "their origin had not confirmed holding this node's latest batch of the document when it committed them.",
          concurrent_ops_merged.load());
  counter("weft_replicated_duplicate_ops_total",
          "Operations from other nodes that were known here already (dropped by op id).",
          replicated_duplicate_ops.load());
  counter("weft_internal_errors_total", "Exceptions caught at the edge of a handler (bugs; the server stayed up).",
          internal_errors.load());
  counter("weft_id_conflicts_total",
          "Operations refused for reusing ids the document holds with other content (forged or buggy replicas).",
          id_conflicts.load());
  counter("weft_forbidden_replica_ops_total",
          "Operations refused because their replica id belongs to another identity (auth on).",
          forbidden_replica_ops.load());
  counter("weft_owner_claim_conflicts_total",
          "Replica ownership claims from other nodes naming another owner than the one held here (the first stays).",
          owner_claim_conflicts.load());
  fmt::format_to(it, "# HELP weft_storage_errors_total Storage failures, by kind.\n"
                    "# TYPE weft_storage_errors_total counter\n");
  for (auto [k, name] : {std::pair{storage_error::full, "full"}, {storage_error::io, "io"},
                         {storage_error::corrupt, "corrupt"}, {storage_error::conflict, "conflict"},
                         {storage_error::other, "other"}})
    fmt::format_to(it, "weft_storage_errors_total{{kind=\"{}\"}} {}\n", name,
                   storage_errors[static_cast<int>(k)].load());
  gauge("weft_send_queue_depth", "Messages waiting in all send queues.", send_queue_depth.load());
  gauge("weft_pending_ops", "Operations waiting in causal buffers for their dependencies.", pending_ops.load());
  std::lock_guard<std::mutex> lock(mu_);
  fmt::format_to(it, "# HELP weft_commit_seconds Duration of one group commit (fsync included).\n");
  fmt::format_to(it, "# TYPE weft_commit_seconds histogram\n");
  std::uint64_t cum = 0;
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    cum += buckets_[i];
    fmt::format_to(it, "weft_commit_seconds_bucket{{le=\"{}\"}} {}\n", bounds_[i], cum);
  }
  cum += buckets_.back();
  fmt::format_to(it, "weft_commit_seconds_bucket{{le=\"+Inf\"}} {}\n", cum);
  fmt::format_to(it, "weft_commit_seconds_sum {}\nweft_commit_seconds_count {}\n", sum_, count_);
  fmt::format_to(it, "# HELP weft_commit_writes_total Writes (op batches, snapshots) committed.\n");
  fmt::format_to(it, "# TYPE weft_commit_writes_total counter\nweft_commit_writes_total {}\n", writes_);
  return out;
}

}  // namespace weft::server
