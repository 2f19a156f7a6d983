#include "server/limits.h"

namespace weft::server {

connection_slot::~connection_slot() {
  if (owner_) owner_->release(address_);
}

connection_slot& connection_slot::operator=(connection_slot&& o) noexcept {
  if (this != &o) {
    if (owner_) owner_->release(address_);
    owner_ = o.owner_;
    address_ = std::move(o.address_);
    o.owner_ = nullptr;
  }
  return *this;
}

connection_slot connection_limiter::acquire(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  std::size_t& n = open_[address];
  if (max_ != 0 && n >= max_) {
    if (n == 0) open_.erase(address);
    return connection_slot(nullptr, address);
  }
  ++n;
  return connection_slot(this, address);
}

void connection_limiter::release(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = open_.find(address);
  if (it != open_.end() && --it->second == 0) open_.erase(it);
}

}  // namespace weft::server
