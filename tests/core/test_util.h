// Shared helpers for the core tests.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "weft/document.h"

namespace weft::test {

/// Applies op to doc and fails the test on error.
inline apply_outcome must_apply(document& doc, const operation& op, std::vector<text_change>* ch = nullptr) {
  auto r = doc.apply(op, ch);
  EXPECT_TRUE(r.ok()) << r.error().to_string();
  return r.ok() ? r.value() : apply_outcome{};
}

/// Local insert that fails the test on error.
inline operation must_insert(document& doc, std::uint64_t pos, std::string_view text) {
  auto r = doc.insert(pos, text);
  EXPECT_TRUE(r.ok()) << r.error().to_string();
  return r.ok() ? r.value() : operation{};
}

inline operation must_erase(document& doc, std::uint64_t pos, std::uint64_t n) {
  auto r = doc.erase(pos, n);
  EXPECT_TRUE(r.ok()) << r.error().to_string();
  return r.ok() ? r.value() : operation{};
}

/// Applies a list of text changes to a plain string (code point positions),
/// the way an editor view would.
std::string apply_changes(std::string text, const std::vector<text_change>& changes);

}  // namespace weft::test
