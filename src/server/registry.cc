#include "server/registry.h"

#include "server/room.h"

namespace weft::server {

std::shared_ptr<document_room> room_registry::acquire(const std::string& doc) {
  std::shared_ptr<document_room> room;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = rooms_[doc];
    if (slot) return slot;
    slot = std::make_shared<document_room>(ctx_, doc);
    room = slot;
  }
  room->start();
  return room;
}

std::shared_ptr<document_room> room_registry::find(const std::string& doc) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = rooms_.find(doc);
  return it == rooms_.end() ? nullptr : it->second;
}

void room_registry::remove(const std::string& doc, const document_room* room) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = rooms_.find(doc);
  if (it != rooms_.end() && it->second.get() == room) rooms_.erase(it);
}

void room_registry::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  rooms_.clear();
}

}  // namespace weft::server
