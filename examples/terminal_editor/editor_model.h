// The editing model of weft-edit: a cursor over one document of a
// weft::client, and the hand-over between the editor's UI thread and the
// client's executor.
//
// Threading contract (the one include/weft/client.h prescribes):
// - The document and the cursor live on the client's executor. The UI thread
//   never touches them: it posts intents (keys, script commands) with
//   client::edit(), which runs them there in order, after every remote op
//   that arrived before.
// - After every change the executor publishes an immutable `frame` (text,
//   cursor, status) into a mutex-guarded mailbox and writes one byte to a
//   pipe, so the UI thread can poll() the pipe with its input and render the
//   newest frame. Frames may be skipped; the newest one is always complete.
// Positions computed on the executor are therefore always positions in the
// document as it is when the edit applies: a remote edit arriving while a
// key is in flight cannot misplace the key.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "weft/client.h"

namespace weft_edit {

/// What the UI shows: a consistent picture of the document at one moment.
struct frame {
  std::string text;                 ///< UTF-8
  std::uint64_t cursor = 0;         ///< code points
  weft::connection_state state = weft::connection_state::connecting;
  bool all_acked = false;           ///< every local op is durable on the server
  std::uint64_t serial = 0;         ///< increases with every publish
  std::vector<std::string> peers;   ///< names of the other people present
};

/// An editing intent from the UI thread.
struct key {
  enum class kind { text, backspace, del, left, right, up, down, home, end, move_to } type = kind::text;
  std::string text;        ///< kind::text: UTF-8 to insert at the cursor
  std::uint64_t to = 0;    ///< kind::move_to: code point position (clamped)
};

/// Connects one document of a client to an editor UI. Create it before
/// client::start(): it installs the client's handlers.
class editor_model {
 public:
  /// `name` and `color` are sent as presence, in the browser editor's format.
  editor_model(weft::network& net, weft::client_options options, std::string doc, std::string name,
               std::string color);
  ~editor_model();
  editor_model(const editor_model&) = delete;
  editor_model& operator=(const editor_model&) = delete;

  /// Connects and opens the document. UI thread.
  void start();
  /// Applies `k` on the executor (thread-safe, non-blocking).
  void press(key k);
  /// Inserts / erases at explicit positions (script mode; thread-safe).
  void insert_at(std::uint64_t position, std::string text);
  void erase_at(std::uint64_t position, std::uint64_t count);

  /// A file descriptor that becomes readable when a new frame is published;
  /// drain it with drain_wakeups(). UI thread.
  int wakeup_fd() const noexcept { return pipe_[0]; }
  void drain_wakeups();
  /// The newest frame (thread-safe copy).
  frame latest() const;
  /// Blocks until `pred(frame)` holds or `timeout_ms` passes; returns the
  /// last frame seen and whether pred held. UI thread.
  template <class Pred>
  std::pair<frame, bool> wait_for(Pred pred, int timeout_ms) {
    std::unique_lock<std::mutex> lock(mu_);
    bool ok = cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return pred(frame_); });
    return {frame_, ok};
  }
  /// Publishes a fresh frame now (e.g. to learn about acks). Thread-safe.
  void refresh();

 private:
  // Executor side.
  void apply_key(weft::document& d, std::vector<weft::operation>& out, const key& k);
  void on_remote(const std::vector<weft::text_change>& changes);
  void publish(const weft::document& d);
  void send_presence();

  std::string doc_;
  std::string presence_json_prefix_;
  std::uint64_t cursor_ = 0;  // executor only
  weft::connection_state state_ = weft::connection_state::connecting;  // executor only
  std::map<std::uint64_t, std::string> peers_;                         // executor only

  mutable std::mutex mu_;
  std::condition_variable cv_;
  frame frame_;  // guarded by mu_
  int pipe_[2] = {-1, -1};

  std::unique_ptr<weft::client> client_;
  // The client, for the handlers: unique_ptr::reset() nulls client_ before
  // ~client() has stopped the handlers, which may still post work meanwhile.
  weft::client* c_ = nullptr;
};

}  // namespace weft_edit
