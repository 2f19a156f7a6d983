// The server-to-server replication link (docs/replication.md): its messages
// and their encoding. Control messages are JSON text frames; batches travel
// in binary frames (kind 3), many per frame. Not part of the client protocol:
// clients never see these, and a client connection never accepts them.
//
// Thread-safety: free functions over values; no shared state.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "weft/status.h"

namespace weft::protocol::peer {

/// The link protocol's version, exchanged in hello/welcome.
inline constexpr int link_version = 1;
/// First byte of a binary frame of batches (client binary frames use 1 and 2).
inline constexpr std::uint8_t entries_kind = 3;
/// The same, each entry followed by its owner claims: sent only when some
/// entry carries claims, so a frame without any still reads on older nodes.
inline constexpr std::uint8_t entries_with_owners_kind = 4;

/// Per origin key ("node~hex"), the highest olsn held contiguously.
using origin_vector = std::map<std::string, std::uint64_t>;

/// Dialer -> acceptor, first message on /peer.
struct hello {
  std::string node;   ///< the dialer's node id
  std::string key;    ///< its origin key
  std::string token;  ///< peer token (when the acceptor requires one); may be empty
  int version = link_version;
};
/// Acceptor -> dialer, once the hello is accepted.
struct welcome {
  std::string node;
  std::string key;
  int version = link_version;
};
/// One node's view of its own links, flooded through the cluster.
struct node_state {
  struct link {
    std::string node;
    std::uint64_t lag_ms = 0;  ///< replication lag of the link, as the sender sees it
  };
  std::string node;
  std::uint64_t version = 0;  ///< higher replaces lower (Unix ms when made, bumped)
  std::vector<link> links;    ///< links that are up
  /// Optional (absent from nodes before it): the node's current origin key,
  /// and the highest olsn it holds durably of each other node's current
  /// key. Lets a write concern count regions that are not neighbours.
  std::string key;
  origin_vector holds;
};
/// Every node state the sender knows.
struct link_state {
  std::vector<node_state> nodes;
};
/// Receiver -> sender: send me the batches of these origin nodes that I
/// lack, given what I hold. Replaces any earlier subscription on the link.
struct subscribe {
  std::vector<std::string> origins;  ///< node ids
  origin_vector have;                ///< every key the receiver holds
};
/// Receiver -> sender: what is durable here now (for the keys it streams).
struct confirm {
  origin_vector have;
};
/// Round-trip probe: a `probe` is answered with a `probe_reply` carrying `t`.
struct probe {
  std::uint64_t t = 0;
  bool reply = false;
};
/// Sender -> receiver: the receiver's checkpoint for `key` fell into a part
/// of the feed that was compacted away. The receiver asks for each of
/// `docs` by version vector (want_doc); once it holds them all durably it
/// moves its checkpoint for `key` to `resume`. Entries after it flow as usual.
struct gap {
  std::string key;
  std::uint64_t resume = 0;
  std::vector<std::string> docs;
};
/// Receiver -> sender: what I hold of `doc`; send what I lack, as one
/// entry with olsn 0 (not a feed entry: stored as the receiver's own batch).
struct want_doc {
  std::string key;
  std::string doc;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> version;  ///< (replica, counter)
};
/// A refusal before the link closes (bad token, duplicate link, ...).
struct link_error {
  std::string message;
};

using message = std::variant<hello, welcome, link_state, subscribe, confirm, probe, link_error, gap, want_doc>;

/// Encodes a control message as one JSON text frame.
std::string encode(const message& m);
/// Decodes a JSON text frame. Errors: invalid_argument, naming what is wrong.
result<message> decode(std::string_view json);

/// One replicated batch on the wire.
struct entry {
  std::string key;      ///< origin key
  std::uint64_t olsn = 0;  ///< 0: an answer to want_doc, not a feed entry
  std::string doc;
  std::string path;     ///< origin keys it passed through, comma-separated (sender included)
  std::int64_t ts_ms = 0;  ///< when the sender committed it
  std::string batch;    ///< encode_ops bytes
  std::string owners;   ///< replica ownership claims made with it (server/replica_owners.h text; may be empty)
};
/// Encodes entries as one binary frame.
std::string encode_entries(const std::vector<entry>& entries);
/// Decodes a binary frame of entries. Errors: corrupt_data / truncated_data.
result<std::vector<entry>> decode_entries(std::string_view frame);

}  // namespace weft::protocol::peer
