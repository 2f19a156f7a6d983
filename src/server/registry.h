// Document id -> room. Creates rooms on demand; a room removes itself when
// it has been idle (no subscribers) long enough.
// Thread-safety: all methods may be called from any thread.
#pragma once

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
  /// The room of `doc`, created (and loading) if not in memory.
  std::shared_ptr<document_room> acquire(const std::string& doc);
  /// The room of `doc` if it is in memory, else null.
  std::shared_ptr<document_room> find(const std::string& doc);
  /// Forgets `room` if it is still the one registered for its id.
  void remove(const std::string& doc, const document_room* room);
  /// Drops every room (teardown).
  void clear();

 private:
  server_context& ctx_;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<document_room>> rooms_;  // guarded by mu_
};

}  // namespace weft::server
