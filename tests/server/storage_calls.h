// Blocking wrappers around the asynchronous storage API, for tests of either
// backend: each call waits for its callback.
#pragma once

#include <future>
#include <string>

#include "server/storage.h"

namespace weft::test {

inline status append_and_wait(server::storage& s, const std::string& doc, std::string bytes) {
  std::promise<status> p;
  auto f = p.get_future();
  s.append(doc, std::move(bytes), [&p](status st, std::uint64_t) { p.set_value(st); });
  return f.get();
}

/// A batch replicated from origin `key` at `olsn`, having passed "other~1".
inline status replicate_and_wait(server::storage& s, const std::string& doc, const std::string& key,
                                 std::uint64_t olsn, std::string bytes) {
  std::promise<status> p;
  auto f = p.get_future();
  s.append_replicated(doc, server::batch_origin{key, olsn, "other~1"}, std::move(bytes),
                      [&p](status st) { p.set_value(st); });
  return f.get();
}

inline result<server::stored_document> load_and_wait(server::storage& s, const std::string& doc) {
  std::promise<result<server::stored_document>> p;
  auto f = p.get_future();
  s.load(doc, [&p](result<server::stored_document> r) { p.set_value(std::move(r)); });
  return f.get();
}

inline result<server::feed_page> feed_and_wait(server::storage& s, const std::string& key, std::uint64_t after,
                                               std::size_t max = 100) {
  std::promise<result<server::feed_page>> p;
  auto f = p.get_future();
  s.read_feed(key, after, max, [&p](result<server::feed_page> r) { p.set_value(std::move(r)); });
  return f.get();
}

inline status snapshot_and_wait(server::storage& s, const std::string& doc, std::string bytes,
                                version_vector version = {}) {
  std::promise<status> p;
  auto f = p.get_future();
  s.put_snapshot(doc, std::move(bytes), std::move(version), [&p](status st) { p.set_value(st); });
  return f.get();
}

}  // namespace weft::test
