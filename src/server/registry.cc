#include "server/registry.h"

#include "server/room.h"

namespace weft::server {

std::shared_ptr<document_room> room_registry::acquire(const std::string& doc) {
  std::shared_ptr<document_room> room;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& e = rooms_[doc];
    if (e.room && e.room->broken()) {
      // It failed to load or to store: later openers get a fresh room that
      // loads again. The broken one stays with its holders (their releases
      // no longer match this entry) and refuses their messages.
      e.room.reset();
      e.pins = 0;
    }
    ++e.pins;
    if (e.room) return e.room;
    e.room = std::make_shared<document_room>(ctx_, doc);
    room = e.room;
  }
  room->start();
  return room;
}

void room_registry::release(const std::shared_ptr<document_room>& room) {
  if (!room) return;
  bool idle = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = rooms_.find(room->id());
    if (it == rooms_.end() || it->second.room != room || it->second.pins == 0) return;
    idle = --it->second.pins == 0;
  }
  if (idle) room->unpinned();
}

bool room_registry::remove_if_unpinned(const document_room* room) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = rooms_.find(room->id());
  if (it == rooms_.end() || it->second.room.get() != room) return true;  // already gone (teardown)
  if (it->second.pins != 0) return false;
  rooms_.erase(it);
  return true;
}

void room_registry::for_each(const std::function<void(const std::shared_ptr<document_room>&)>& f) {
  std::vector<std::shared_ptr<document_room>> rooms;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rooms.reserve(rooms_.size());
    for (auto& [id, e] : rooms_) rooms.push_back(e.room);
  }
  for (auto& r : rooms) f(r);
}

void room_registry::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  rooms_.clear();
}

}  // namespace weft::server
