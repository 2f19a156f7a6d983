// weft — one replica of a collaboratively edited text.
//
// A `document` is a sequence CRDT (FugueMax ordering, YjsMod-style integration)
// with version vectors and causal buffering. Local edits apply at once and
// return the operation to send to other replicas; remote operations are
// applied as soon as their causal dependencies are known, in any arrival
// order, with duplicates ignored. All replicas that have applied the same set
// of operations have the same text, whatever the order they received them in.
//
// Thread-safety: a document is NOT thread-safe. It is a plain single-threaded
// value; callers that share one across threads must synchronise externally.
// Distinct documents are independent.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "weft/operation.h"
#include "weft/status.h"
#include "weft/types.h"

namespace weft {

/// Tunables of a replica. Defaults suit an editor and a server alike.
struct document_options {
  /// Most operations held back in the causal buffer waiting for their
  /// dependencies. Past it apply() fails with pending_buffer_full.
  /// Default: 65,536.
  std::size_t max_pending_ops = 65536;
  /// Most ids (characters) the pending operations may span in total.
  /// Default: 4,194,304.
  std::uint64_t max_pending_ids = 4u << 20;
  /// Most ids (characters inserted or deleted) one remote operation may use;
  /// larger ones fail with limit_exceeded, so a forged op cannot make the
  /// replica allocate or loop without bound. ops_since() never makes ops
  /// larger than 65,536 ids. Default: 1,048,576.
  std::uint64_t max_op_ids = 1u << 20;
  /// Most ids (characters and deletions, all replicas together) a snapshot
  /// may hold for decode_snapshot() to load it; larger ones fail with
  /// limit_exceeded before anything is allocated for them. A snapshot stays
  /// small however many ids it holds (a deleted paste is a few bytes), while
  /// decoding costs memory per id (4 bytes of id index, and up to about 100
  /// more while decoding a snapshot of one-character runs), so this is what
  /// keeps a forged snapshot from claiming gigabytes. The default,
  /// 67,108,864, is 250 times the automerge-paper trace's history.
  std::uint64_t max_snapshot_ids = 1u << 26;
};

/// What apply() did with an operation.
struct apply_outcome {
  enum class state : std::uint8_t {
    applied = 0,    ///< applied now (possibly with buffered ops it unblocked)
    buffered = 1,   ///< waiting in the causal buffer for its dependencies
    duplicate = 2,  ///< already known; ignored
  };
  state result = state::applied;
  /// Operations applied by this call: this one and every buffered one it unblocked.
  std::uint64_t ops_applied = 0;
};

class sequence_state;  // implementation detail

class document {
 public:
  /// A new, empty replica with id `replica`.
  /// REQUIRES: replica <= max_replica_id (larger ids are masked to 53 bits).
  explicit document(replica_id replica, document_options options = {});
  ~document();
  document(document&&) noexcept;
  document& operator=(document&&) noexcept;
  /// Deep copy (same replica id: use the copy for reading or as a backup, never
  /// as a second live writer).
  document(const document&);
  document& operator=(const document&);

  /// This replica's id.
  replica_id replica() const noexcept;

  // ---- local edits -------------------------------------------------------

  /// Inserts UTF-8 `text` before code point `position` and returns the
  /// operation to send to the other replicas. Errors: invalid_argument when
  /// position > length() or text is empty / not valid UTF-8; limit_exceeded
  /// when the text is longer than options.max_op_ids or this replica's
  /// counters are exhausted. On error nothing changes.
  result<operation> insert(std::uint64_t position, std::string_view text);

  /// Deletes `count` code points starting at `position` and returns the
  /// operation to send. Errors: invalid_argument when the range is empty or
  /// extends past length(); limit_exceeded past options.max_op_ids. On error
  /// nothing changes.
  result<operation> erase(std::uint64_t position, std::uint64_t count);

  // ---- remote operations -------------------------------------------------

  /// Applies an operation from another replica (or one of ours echoed back).
  /// Ops whose dependencies are missing are buffered and applied, together with
  /// everything they unblock, once the dependencies arrive. Known ops (and the
  /// known prefix of partly known ops) are ignored. Changes to the visible text
  /// made by this call, including by unblocked ops, are appended to `changes`
  /// when it is non-null; the operations applied (this one trimmed to its
  /// unknown part, then every op it unblocked, in application order — a causal
  /// order, fit for rebroadcast and storage) to `applied` when it is non-null.
  /// Errors: invalid_operation for a malformed op or one that references ids
  /// that are not characters of this document; pending_buffer_full when it
  /// would have to be buffered past the bound. A failed op changes nothing,
  /// but buffered ops it would have unblocked stay buffered.
  result<apply_outcome> apply(const operation& op, std::vector<text_change>* changes = nullptr,
                              std::vector<operation>* applied = nullptr);

  // ---- queries -----------------------------------------------------------

  /// The visible text, UTF-8. O(size).
  std::string text() const;
  /// Visible length in code points. O(1).
  std::uint64_t length() const noexcept;
  /// Per replica, the highest counter applied.
  const version_vector& version() const noexcept;
  /// Where character `id` is now: its visible position in code points, or
  /// nullopt when it is deleted or is not a character of this document (an
  /// unknown id, or one an erase used). So an editor finds characters it
  /// knows by id, e.g. its own inserts (an insert's characters have the ids
  /// id, id+1, ... of its operation). Non-const: it moves the cursor that
  /// makes nearby lookups cheap (O(distance in blocks) + O(block size)).
  std::optional<std::uint64_t> position_of(op_id id);
  /// The id of the visible character at code point `position`. Errors:
  /// invalid_argument when position >= length(). Non-const as position_of().
  result<op_id> id_at(std::uint64_t position);
  /// True when `id` has been applied.
  bool knows(op_id id) const noexcept { return version().covers(id); }
  /// Every applied operation that a replica at version `peer` lacks, in an
  /// order in which it can apply them without buffering. Ops may be split or
  /// merged relative to how they were first made; ids make that harmless.
  std::vector<operation> ops_since(const version_vector& peer) const;
  /// Operations waiting in the causal buffer.
  std::size_t pending_ops() const noexcept;
  /// Bytes of heap memory held by this replica (approximate, excludes allocator overhead).
  std::size_t memory_usage() const noexcept;
  /// Checks internal invariants (for tests and fuzzers); returns a description
  /// of the first violation, or an empty string. O(size).
  std::string check_invariants() const;

  // ---- persistence ---------------------------------------------------------

  /// Encodes the whole replica (visible text, tombstones without their text,
  /// ids, origins, and the history sync needs) in the versioned, compressed
  /// binary snapshot format of docs/encoding.md. Pending (buffered)
  /// operations are not included. Deterministic: the same replica state
  /// always gives the same bytes.
  std::string encode_snapshot() const;

  /// Decodes a snapshot (any format version so far) into a replica that
  /// will make local edits as `replica`. Errors: corrupt_data,
  /// truncated_data, unsupported_version, limit_exceeded (more ids than
  /// options.max_snapshot_ids) — never undefined behaviour, whatever the bytes.
  static result<document> decode_snapshot(std::string_view bytes, replica_id replica,
                                          document_options options = {});

 private:
  explicit document(std::unique_ptr<sequence_state> state);
  std::unique_ptr<sequence_state> s_;
};

}  // namespace weft
