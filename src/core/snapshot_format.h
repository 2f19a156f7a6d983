// Internal: the snapshot format's readers (docs/encoding.md, "Snapshot").
// Each format version is parsed into snapshot_parts; one assembler checks
// the parts and builds the replica, so every version is held to the same
// rules.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/byte_io.h"
#include "core/op_log.h"
#include "core/run.h"
#include "weft/document.h"

namespace weft::detail {

/// A snapshot as read, before any check that needs more than one field.
/// Replicas are indices into `replicas`; parsers guarantee that every index
/// they store is below replicas.size() and every counter is in
/// [1, max_counter], and nothing else.
struct snapshot_parts {
  std::vector<replica_id> replicas;    // local index -> replica id
  std::vector<std::uint64_t> highest;  // local index -> version-vector entry
  std::vector<run> runs;               // document order; text_offset/bytes unset
  std::string text;                    // the visible runs' text, in order
  std::vector<log_entry> entries;      // history, application order
  std::vector<target_span> targets;    // erase targets, entries refer to them
};

/// The errors every snapshot reader returns, naming what is wrong: bytes
/// that cannot be a snapshot, and bytes that end early.
inline status snapshot_corrupt(const char* what) {
  return status(error_code::corrupt_data, std::string("snapshot: ") + what);
}
inline status snapshot_truncated(const char* what) {
  return status(error_code::truncated_data, std::string("snapshot: ") + what);
}

inline constexpr char snapshot_magic[4] = {'W', 'E', 'F', 'T'};
inline constexpr std::uint8_t snapshot_kind = 'S';

// Run flag bits, both versions.
inline constexpr std::uint8_t f_deleted = 1 << 0;
inline constexpr std::uint8_t f_same_replica = 1 << 1;  // replica as the previous run's
inline constexpr std::uint8_t f_left_shift = 2;          // 2 bits: left origin mode
inline constexpr std::uint8_t f_right_shift = 4;         // 2 bits: right origin mode
// Origin modes.
inline constexpr std::uint8_t o_none = 0;
inline constexpr std::uint8_t o_adjacent = 1;  // left: last char of the previous run; right: first char of the next run
inline constexpr std::uint8_t o_own = 2;       // same replica as the run: counter delta only
inline constexpr std::uint8_t o_other = 3;     // replica index + counter

/// Reads the replica table (count, then id and version-vector entry per
/// replica) into out->replicas and out->highest, and checks the ids against
/// `max_ids` (check_ids). Errors: corrupt_data, truncated_data, limit_exceeded.
status read_replica_table(byte_reader& in, std::uint64_t max_ids, snapshot_parts* out);

/// Where each field of the runs is read from: one reader for all of them
/// (version 1: rows) or one per column (version 2). Readers are used in the
/// order the fields appear in a row.
struct run_readers {
  byte_reader& flags;
  byte_reader& replica;
  byte_reader& counter;
  byte_reader& length;
  byte_reader& origins;
};
/// Reads `count` runs into out->runs (out->replicas must be set; adjacent
/// origins resolved). Errors: corrupt_data, truncated_data (a reader ran out).
status read_runs(const run_readers& in, std::uint64_t count, snapshot_parts* out);

/// The same for the history's fields.
struct history_readers {
  byte_reader& head;
  byte_reader& counter;
  byte_reader& length;
  byte_reader& target_count;
  byte_reader& target_replica;
  byte_reader& target_counter;
  byte_reader& target_length;
};
/// Reads `count` history entries and their target spans (at most
/// `max_targets` in all) into out->entries and out->targets.
status read_history(const history_readers& in, std::uint64_t count, std::uint64_t max_targets, snapshot_parts* out);

/// limit_exceeded when the version vector holds more than `max_ids` ids in
/// all; corrupt_data when an entry passes max_counter.
status check_ids(const std::vector<std::uint64_t>& highest, std::uint64_t max_ids);

/// Parses a version-1 body (after the 6-byte header, before the CRC).
/// On failure returns a corrupt_data, truncated_data or limit_exceeded
/// status (more than `max_ids` ids, checked before anything is allocated
/// for them).
status parse_snapshot_v1(std::string_view body, std::uint64_t max_ids, snapshot_parts* out);
/// Parses a version-2 (columnar) body; errors as parse_snapshot_v1.
status parse_snapshot_v2(std::string_view body, std::uint64_t max_ids, snapshot_parts* out);

}  // namespace weft::detail
