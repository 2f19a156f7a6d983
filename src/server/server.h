// weft-server as an object: binds, runs its I/O threads and storage, and
// stops gracefully. main() and the end-to-end tests both use it.
#pragma once

#include <cstdint>
#include <memory>

#include "server/config.h"
#include "weft/status.h"

namespace weft::server {

class server {
 public:
  /// Opens storage under config.data_dir, binds config.bind:config.port and
  /// starts serving. Errors: invalid_argument (bad address, port in use,
  /// unusable data directory).
  static result<std::unique_ptr<server>> start(server_config config);
  /// The port actually bound (useful with port 0).
  std::uint16_t port() const noexcept;
  /// Stops accepting, closes every connection with a reason, commits what is
  /// queued, and joins the threads. Idempotent; also done by the destructor.
  void stop();
  ~server();

  struct impl;

 private:
  explicit server(std::unique_ptr<impl> p);
  std::unique_ptr<impl> p_;
};

}  // namespace weft::server
