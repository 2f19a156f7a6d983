// Internal: the sequence of all characters ever inserted (tombstones included),
// stored as runs in fixed-size blocks, with:
//  - per-block visible counts, so a visible position is found by walking
//    block counts from a cached cursor (sequential editing is O(1) amortised);
//  - an id index (replica, counter) -> block, so a character is found by id in
//    O(block size);
//  - the FugueMax/YjsMod integration of remote inserts.
//
// Not thread-safe. Owned by one document.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/run.h"
#include "weft/types.h"

namespace weft::detail {

/// A character position in the block list: block order, slot in block, offset
/// in run. `block == end_block` is the end of the document.
struct cursor {
  static constexpr std::uint32_t end_block = 0xFFFFFFFFu;
  std::uint32_t block = end_block;
  std::uint32_t slot = 0;
  std::uint32_t offset = 0;
  bool at_end() const noexcept { return block == end_block; }
  friend bool operator==(cursor, cursor) = default;
};

class content_tree {
 public:
  static constexpr std::uint32_t block_capacity = 32;
  static constexpr std::uint32_t no_block = 0xFFFFFFFFu;

  struct block {
    std::uint32_t id = 0;     // stable, index into by_id_
    std::uint32_t order = 0;  // position in blocks_
    std::uint32_t count = 0;  // runs used
    run runs[block_capacity];
  };

  /// `global_ids` maps local replica index -> replica id (for tie-breaks); it
  /// must outlive the tree and grow before a new replica is used.
  explicit content_tree(const std::vector<replica_id>* global_ids);
  content_tree(const content_tree& other, const std::vector<replica_id>* global_ids);

  std::uint64_t visible() const noexcept { return visible_; }
  std::uint64_t total() const noexcept { return total_; }

  /// Registers that the ids (replica, counter..counter+n-1) are not characters
  /// (they were used by deletions), keeping the id index dense.
  void note_non_characters(std::uint32_t replica, std::uint32_t n);
  /// Makes sure the id index has an entry list for `replica`.
  void ensure_replica(std::uint32_t replica);
  /// Ids of `replica` the index knows (characters and non-characters).
  std::uint32_t known_counters(std::uint32_t replica) const noexcept;

  /// The run and offset of visible character `p`. REQUIRES p < visible().
  cursor locate_visible(std::uint64_t p);
  /// Visible characters before `c` (c's own position when it is visible).
  std::uint64_t position_of(cursor c) { return visible_pos(c); }
  /// The run and offset of character `id`, or an end cursor if `id` is not a
  /// character of this document.
  cursor locate(ref id) const;
  /// The character just before `c` in the full sequence, or none at the start.
  ref char_before(cursor c) const;
  /// The run at `c`. REQUIRES !c.at_end().
  const run& run_at(cursor c) const { return blocks_[c.block]->runs[c.slot]; }
  /// The id at `c`, or none at the end.
  ref char_at(cursor c) const;

  /// Inserts the run of a local edit at visible position p. Fills nr.left and
  /// nr.right. Returns the visible position (always p).
  void insert_local(std::uint64_t p, run& nr, std::string_view text);
  /// Integrates a remote insert run (its origins set). Returns false, changing
  /// nothing, when the origins are not characters or are out of order.
  /// On success *visible_pos (when not null) is where the text appeared;
  /// pass null when nobody needs it: it costs a walk over the blocks before.
  bool integrate(run nr, std::string_view text, std::uint64_t* visible_pos);

  /// Deletes `n` visible characters at visible position p; appends the ids
  /// deleted (as spans in document order) to `out`.
  struct span_ref { std::uint32_t replica, counter, length; };
  void erase_visible(std::uint64_t p, std::uint64_t n, std::vector<span_ref>* out);
  /// Marks characters (replica, counter..counter+n-1) deleted. Calls
  /// on_erase(visible_pos, count) for each piece that was visible; the
  /// position costs a walk over the blocks before it, so it is computed only
  /// when `want_positions` (else 0 is passed). Returns false if some id is not
  /// a character (nothing is changed then).
  template <class F>
  bool erase_ids(ref first, std::uint32_t n, bool want_positions, F&& on_erase);
  /// True when no id of the span is a character (yet).
  bool ids_free(ref first, std::uint32_t n) const;
  /// Extends the id index of `replica` to `n` ids, the new ones non-characters.
  void pad_index(std::uint32_t replica, std::uint32_t n);
  /// True when every id of the span is a character.
  bool all_characters(ref first, std::uint32_t n) const;

  /// Visible text.
  std::string text() const;
  /// Calls f(const run&, std::string_view text) for every run in order.
  template <class F>
  void for_each_run(F&& f) const {
    for (const block* b : blocks_)
      for (std::uint32_t s = 0; s < b->count; ++s)
        f(b->runs[s], std::string_view(arena_).substr(b->runs[s].text_offset, b->runs[s].text_bytes));
  }
  /// Replaces the content of a tree that holds nothing yet with `runs`, in
  /// document order (snapshot decoding). Their text comes from `text`, the
  /// visible runs' text concatenated; deleted runs get none. Blocks are
  /// filled to 3/4 so that the first edits rarely split one. The id index of
  /// local replica r gets `ids[r]` entries.
  /// REQUIRES (the snapshot decoder checks it): `text` is valid UTF-8 with
  /// exactly the visible runs' code points; runs claim disjoint ids, each
  /// within 1..ids[replica]; ids.size() covers every run's replica.
  void load(std::vector<run>& runs, std::string text, const std::vector<std::uint64_t>& ids);
  /// Text of `bytes` bytes starting at arena offset `off`.
  std::string_view arena_text(std::uint32_t off, std::uint32_t bytes) const {
    return std::string_view(arena_).substr(off, bytes);
  }

  std::size_t memory_usage() const noexcept;
  std::string check_invariants() const;
  /// True when every run's left origin is before it and its right origin
  /// after it in the sequence (what integration guarantees; a snapshot that
  /// breaks it was tampered with). O(runs x block size).
  bool origins_in_order() const;

 private:
  block& blk(std::uint32_t order) { return *blocks_[order]; }
  const block& blk(std::uint32_t order) const { return *blocks_[order]; }
  run& at(cursor c) { return blocks_[c.block]->runs[c.slot]; }
  const run& at(cursor c) const { return blocks_[c.block]->runs[c.slot]; }

  cursor first() const;
  cursor next_run(cursor c) const;
  std::uint64_t visible_before_block(std::uint32_t order);
  std::uint64_t visible_pos(cursor c);
  /// Splits the block if it is full; returns where `c` is afterwards.
  cursor make_room(cursor c);
  void split_block(std::uint32_t order);
  /// Splits the run at c (0 < c.offset < length); returns the cursor of the right part.
  cursor split_run(cursor c);
  /// Inserts a run at `dest` (splitting the run there), merging with the previous
  /// run when possible. Returns the cursor of the first inserted character.
  cursor insert_at(cursor dest, run nr, std::string_view text);
  /// Marks [c.offset, c.offset+n) of the visible run at c deleted. Cursors
  /// into the block are invalid afterwards (runs may merge).
  void erase_in_run(cursor c, std::uint32_t n);
  /// Merges run `slot` with the next one in the same block when together they
  /// form one run (consecutive ids and text, same state and right origin).
  bool merge_with_next(std::uint32_t order, std::uint32_t slot);
  void index_set(std::uint32_t replica, std::uint32_t counter, std::uint32_t n, std::uint32_t block_id);
  void recount(std::uint32_t order);
  /// Changes block `order`'s visible count, keeping totals and the cache right.
  void add_visible(std::uint32_t order, std::int64_t delta);

  const std::vector<replica_id>* global_ids_;
  std::vector<block*> blocks_;                  // in document order
  std::vector<std::unique_ptr<block>> by_id_;   // owner, by stable id
  std::vector<std::uint32_t> vis_;              // visible chars per block (by order)
  std::vector<std::vector<std::uint32_t>> index_;  // [replica][counter-1] -> block id
  std::string arena_;
  std::uint64_t visible_ = 0;
  std::uint64_t total_ = 0;
  // Cached cursor: visible characters before block cache_order_.
  std::uint32_t cache_order_ = 0;
  std::uint64_t cache_visible_ = 0;
  // Where locate_visible() last found a character: block order, slot, and
  // the visible characters before that slot in the block. Valid while
  // slot_stamp_ == stamp_; every change of the runs bumps stamp_, and the
  // typing path (a run growing at its end) keeps the slot valid by hand.
  std::uint64_t stamp_ = 0;
  std::uint64_t slot_stamp_ = ~std::uint64_t{0};
  std::uint32_t slot_block_ = 0;
  std::uint32_t slot_ = 0;
  std::uint64_t slot_before_ = 0;
  // Where locate() last found a run (block id, slot): only a hint, checked
  // before use, so edits never need to update it.
  mutable std::uint32_t hint_block_ = no_block;
  mutable std::uint32_t hint_slot_ = 0;
};

template <class F>
bool content_tree::erase_ids(ref first, std::uint32_t n, bool want_positions, F&& on_erase) {
  if (!all_characters(first, n)) return false;
  while (n > 0) {
    cursor c = locate(first);
    run& r = at(c);
    std::uint32_t k = r.length - c.offset;
    if (k > n) k = n;
    if (!r.deleted) {
      std::uint64_t pos = want_positions ? visible_pos(c) : 0;
      erase_in_run(c, k);
      on_erase(pos, k);
    }
    first.counter += k;
    n -= k;
  }
  return true;
}

}  // namespace weft::detail
