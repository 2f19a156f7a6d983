// weft — typed errors for the embeddable core.
//
// The core never throws across its public API: every fallible call returns a
// `result<T>` (or `status`) that must be checked. Error codes are part of the
// wire/disk contract of embedders (the C API exposes them as integers), so the
// numeric values of existing entries must never change.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace weft {

/// Flat list of everything that can go wrong in the core.
enum class error_code : std::uint8_t {
  ok = 0,                   ///< no error
  invalid_argument = 1,     ///< a position/length outside the document, or invalid UTF-8 text
  invalid_operation = 2,    ///< a malformed or impossible operation (bad id, zero length, dangling reference)
  pending_buffer_full = 3,  ///< the causal buffer reached its bound; the op was not stored
  corrupt_data = 4,         ///< encoded bytes are structurally wrong or fail their checksum
  truncated_data = 5,       ///< encoded bytes end before the structure they describe
  unsupported_version = 6,  ///< encoded bytes use a format version this build cannot read
  limit_exceeded = 7,       ///< a built-in size limit (counters per replica, document size) would be passed
  id_conflict = 8,          ///< an op reuses ids the document already holds with other content
};

/// A short, static, human-readable description of `code`. Never null.
const char* error_message(error_code code) noexcept;

/// An error code plus a detail message that says what exactly was wrong.
/// Value type; cheap when ok (empty string).
class [[nodiscard]] status {
 public:
  /// An ok status.
  status() = default;
  /// An error status. `code` should not be `error_code::ok`.
  status(error_code code, std::string detail) : code_(code), detail_(std::move(detail)) {}

  bool ok() const noexcept { return code_ == error_code::ok; }
  error_code code() const noexcept { return code_; }
  /// Detail text, e.g. "insert origin (7,12) is not a character of this document".
  const std::string& detail() const noexcept { return detail_; }
  /// "<error_message(code)>: <detail>", for logs and error replies.
  std::string to_string() const;

 private:
  error_code code_ = error_code::ok;
  std::string detail_;
};

/// Either a value of type T or a non-ok status. Check `ok()` before `value()`.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::move(value)) {}                  // NOLINT: implicit by design
  result(status error) : v_(std::move(error)) {}             // NOLINT: implicit by design
  result(error_code code, std::string detail) : v_(status(code, std::move(detail))) {}

  bool ok() const noexcept { return std::holds_alternative<T>(v_); }
  explicit operator bool() const noexcept { return ok(); }

  /// REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  /// The error; an ok status when the result holds a value.
  status error() const { return ok() ? status() : std::get<status>(v_); }
  error_code code() const noexcept { return ok() ? error_code::ok : std::get<status>(v_).code(); }

 private:
  std::variant<T, status> v_;
};

}  // namespace weft
