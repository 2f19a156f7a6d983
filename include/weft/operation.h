// weft — the operations replicas exchange.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "weft/types.h"

namespace weft {

enum class op_kind : std::uint8_t {
  insert = 0,  ///< insert UTF-8 text; one id per code point
  erase = 1,   ///< delete characters named by id; one id per deleted character
  /// Insert of characters the sender knows to be deleted already: as an
  /// insert, but with `count` characters and no text. Only ops_since() makes
  /// them, for a peer that lacks both the characters and their deletion (the
  /// deletion is always in the same answer), so deleted text is never resent.
  tombstone = 2,
};

/// One operation: an insertion of a run of characters typed together, or a
/// deletion of a set of characters.
///
/// An insert of k code points uses the ids (id.replica, id.counter .. id.counter+k-1).
/// `origin_left` is the character just left of the insertion point when it was
/// made and `origin_right` the one just right of it (tombstones included); an
/// absent origin means the start / end of the document.
///
/// A tombstone is an insert of `count` already-deleted characters.
///
/// An erase uses one id per deleted character, (id.replica, id.counter ..
/// id.counter + sum(target lengths) - 1); `targets` names the deleted
/// characters in the order of those ids: counting through the spans, the k-th
/// character listed was deleted by id counter + k. The order matters to a
/// replica that already knows a prefix of the erase's ids: it applies the rest.
struct operation {
  op_kind kind = op_kind::insert;
  op_id id;
  std::optional<op_id> origin_left;   // insert and tombstone
  std::optional<op_id> origin_right;  // insert and tombstone
  std::string text;                   // insert only, UTF-8, at least one code point
  std::uint64_t count = 0;            // tombstone only: characters, at least one
  std::vector<id_span> targets;       // erase only, each length >= 1

  /// Number of ids the operation uses (code points inserted or characters deleted).
  /// For an insert with invalid UTF-8 this counts lead bytes; apply() rejects such text.
  std::uint64_t length() const noexcept;

  friend bool operator==(const operation&, const operation&) = default;
};

/// A change to the visible text, for patching an editor view. Positions are
/// code points in the text as it is after the changes listed before this one.
struct text_change {
  enum class kind : std::uint8_t { insert = 0, erase = 1 };
  kind type = kind::insert;
  std::uint64_t position = 0;
  std::uint64_t length = 0;  ///< code points inserted or erased
  std::string text;          ///< inserted text (insert only)
  friend bool operator==(const text_change&, const text_change&) = default;
};

}  // namespace weft
