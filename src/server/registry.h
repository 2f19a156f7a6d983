// Document id -> room. Creates rooms on demand and pins them: a room stays in
// memory while anyone holds a pin (a connection that has the document open,
// an HTTP request reading it), and only the registry decides when an idle,
// unpinned room leaves. So a holder never finds its room unloaded, and the
// hot path (a keystroke) needs no lookup: connections keep their rooms.
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace weft::server {

class document_room;
struct server_context;

class room_registry {
 public:
  explicit room_registry(server_context& ctx) : ctx_(ctx) {}
  /// The room of `doc`, created (and loading) if not in memory, with one more
  /// pin. Every acquire() is matched by one release().
  std::shared_ptr<document_room> acquire(const std::string& doc);
  /// Drops a pin taken by acquire(). The last one lets the room unload once
  /// it has been idle long enough.
  void release(const std::shared_ptr<document_room>& room);
  /// Called by an idle room (on its strand): forgets it if nobody pins it.
  /// True: it was removed, and must not be used again.
  bool remove_if_unpinned(const document_room* room);
  /// Calls f(room) for each room in memory (outside the registry's lock).
  void for_each(const std::function<void(const std::shared_ptr<document_room>&)>& f);
  /// Drops every room (teardown).
  void clear();

 private:
  server_context& ctx_;
  std::mutex mu_;
  struct entry {
    std::shared_ptr<document_room> room;
    std::size_t pins = 0;
  };
  std::unordered_map<std::string, entry> rooms_;  // guarded by mu_
};

}  // namespace weft::server
