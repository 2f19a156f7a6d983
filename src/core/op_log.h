// Internal: the history of applied operations, in application order (which
// is a causal order), run-length encoded. It answers "which ops does a peer
// at version V lack" and is what snapshots store besides the content.
#pragma once

#include <cstdint>
#include <vector>

namespace weft::detail {

/// Characters deleted by consecutive delete ids: counters counter, counter+1, ...
/// or, when `reverse`, counter, counter-1, ... (backspacing).
struct target_span {
  std::uint32_t replica;
  std::uint32_t counter;
  std::uint32_t length;
  std::uint32_t reverse;  // 0 or 1
};

struct log_entry {
  std::uint32_t replica;   // local index
  std::uint32_t counter;   // first id
  std::uint32_t length;    // ids
  std::uint32_t is_erase;  // 0 insert, 1 erase
  std::uint32_t targets_begin;  // erase: first index in targets()
  std::uint32_t targets_count;  // erase: spans
};

class op_log {
 public:
  /// Records an insert of ids (replica, counter .. counter+length-1).
  void append_insert(std::uint32_t replica, std::uint32_t counter, std::uint32_t length);
  /// Records a deletion of ids (replica, counter..) whose i-th id deleted the
  /// i-th character listed by `spans` (each a forward span).
  void begin_erase(std::uint32_t replica, std::uint32_t counter);
  void add_erase_target(std::uint32_t replica, std::uint32_t counter, std::uint32_t length);
  /// Appends a raw entry (snapshot decoding). Targets must be pushed first.
  void append_raw(const log_entry& e) { entries_.push_back(e); }
  void push_raw_target(const target_span& t) { targets_.push_back(t); }

  const std::vector<log_entry>& entries() const noexcept { return entries_; }
  const std::vector<target_span>& targets() const noexcept { return targets_; }
  std::size_t memory_usage() const noexcept {
    return entries_.capacity() * sizeof(log_entry) + targets_.capacity() * sizeof(target_span);
  }

 private:
  std::vector<log_entry> entries_;
  std::vector<target_span> targets_;
};

}  // namespace weft::detail
