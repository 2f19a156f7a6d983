/* weft — C API of the embeddable document core.
 *
 * One `weft_doc` is one replica of a collaboratively edited text (the C++
 * `weft::document`, docs/crdt.md). Local edits apply at once and append the
 * operation to send to a `weft_ops` list; remote operations are applied in any
 * order, with duplicates ignored and ops whose dependencies are missing
 * buffered. Ops travel as the protocol's JSON (docs/protocol.md: the "ops"
 * array of an `ops` or `sync` message) or as the compact binary batch of
 * docs/encoding.md.
 *
 * Conventions
 * - Positions and lengths count Unicode code points of the text; helpers at
 *   the end convert from UTF-8 byte and UTF-16 offsets. Text is UTF-8.
 * - Every fallible function returns a `weft_status`; WEFT_OK is 0. On error
 *   nothing observable changed (except where a function says otherwise) and
 *   weft_last_error() describes what went wrong.
 * - Ownership: handles made by a *_new / *_load / *_from_* function belong to
 *   the caller, who frees them with the matching *_free. Byte buffers returned
 *   through `uint8_t**` / `char**` out-parameters are allocated with malloc()
 *   and belong to the caller: release them with weft_free(). Pointers passed
 *   in are only read during the call, never kept.
 * - Threads: a handle is not thread-safe; use each from one thread at a time.
 *   Distinct handles are independent and may be used on different threads.
 *   weft_last_error() is per thread.
 * - No function throws, aborts or calls exit(); out of memory is reported as
 *   WEFT_ERR_OUT_OF_MEMORY. Passing NULL where a handle is required returns
 *   WEFT_ERR_INVALID_ARGUMENT.
 */
#ifndef WEFT_WEFT_H
#define WEFT_WEFT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Version of this API; raised when a function is added or changed. */
#define WEFT_C_API_VERSION 1

/** Error codes. The values equal weft::error_code's and never change. */
typedef enum weft_status {
  WEFT_OK = 0,
  WEFT_ERR_INVALID_ARGUMENT = 1,    /**< position/length outside the text, invalid UTF-8, NULL handle, malformed JSON */
  WEFT_ERR_INVALID_OPERATION = 2,   /**< an op that is malformed or refers to ids that are not characters */
  WEFT_ERR_PENDING_BUFFER_FULL = 3, /**< the causal buffer reached its bound; the op was not stored */
  WEFT_ERR_CORRUPT_DATA = 4,        /**< encoded bytes are structurally wrong or fail their checksum */
  WEFT_ERR_TRUNCATED_DATA = 5,      /**< encoded bytes end early */
  WEFT_ERR_UNSUPPORTED_VERSION = 6, /**< an encoding version this build cannot read */
  WEFT_ERR_LIMIT_EXCEEDED = 7,      /**< a size limit (op size, counters of a replica) would be passed */
  WEFT_ERR_ID_CONFLICT = 8,         /**< an op reuses ids the document holds with other content; nothing changed */
  WEFT_ERR_OUT_OF_MEMORY = 100      /**< an allocation failed; nothing changed */
} weft_status;

/** A short static description of `status` ("invalid argument", ...). Never NULL. */
const char* weft_status_message(weft_status status);

/** What the last failing call on this thread said, in detail (e.g. "position
 * 12 is past the end (length 10)"); "" after a success. Valid until the next
 * weft_* call on this thread; do not free. */
const char* weft_last_error(void);

/** Frees a buffer returned by this API. NULL is ignored. */
void weft_free(void* buffer);

/* ---- operation lists ---------------------------------------------------- */

/** An ordered list of operations (inserts, deletes, tombstones). */
typedef struct weft_ops weft_ops;

/** Makes an empty list. Errors: OUT_OF_MEMORY. */
weft_status weft_ops_new(weft_ops** out);
/** Frees a list. NULL is ignored. */
void weft_ops_free(weft_ops* ops);
/** Number of operations in the list (0 for NULL). */
size_t weft_ops_count(const weft_ops* ops);
/** Empties the list (keeps its memory for reuse). */
void weft_ops_clear(weft_ops* ops);
/** Appends copies of every op of `src` to `dst`. */
weft_status weft_ops_append(weft_ops* dst, const weft_ops* src);

/** Encodes the list as a JSON array of ops, the "ops" value of the protocol's
 * `ops` message. `*out` (NUL-terminated; `*out_len` excludes the NUL) is
 * the caller's: weft_free() it. `out_len` may be NULL. */
weft_status weft_ops_to_json(const weft_ops* ops, char** out, size_t* out_len);
/** Parses a JSON array of ops (the protocol's "ops" value) and appends them
 * to `ops`. Strict: unknown fields and malformed ops are errors
 * (INVALID_ARGUMENT), and then nothing is appended. */
weft_status weft_ops_from_json(weft_ops* ops, const char* json, size_t len);
/** Encodes the list as one binary batch (docs/encoding.md, with checksum).
 * `*out` is the caller's: weft_free() it. */
weft_status weft_ops_encode(const weft_ops* ops, uint8_t** out, size_t* out_len);
/** Decodes a binary batch and appends its ops. Errors: CORRUPT_DATA,
 * TRUNCATED_DATA, UNSUPPORTED_VERSION; then nothing is appended. */
weft_status weft_ops_decode(weft_ops* ops, const uint8_t* bytes, size_t len);

/* ---- version vectors ---------------------------------------------------- */

/** Per replica, the highest counter applied. */
typedef struct weft_version weft_version;

/** Makes an empty version vector. */
weft_status weft_version_new(weft_version** out);
/** Frees it. NULL is ignored. */
void weft_version_free(weft_version* version);
/** Highest counter of `replica` (0 if none). */
uint64_t weft_version_get(const weft_version* version, uint64_t replica);
/** Sets the counter of `replica` (0 removes it), e.g. to lower your own entry
 * in the server's version to your last ack before weft_doc_ops_since(). */
weft_status weft_version_set(weft_version* version, uint64_t replica, uint64_t counter);
/** Number of replicas with a non-zero counter. */
size_t weft_version_count(const weft_version* version);
/** The `index`-th entry (sorted by replica id). Errors: INVALID_ARGUMENT
 * when index >= weft_version_count(). */
weft_status weft_version_entry(const weft_version* version, size_t index, uint64_t* replica, uint64_t* counter);
/** JSON [[replica,counter],...] as the protocol's "version" fields; `*out`
 * is the caller's: weft_free() it. `out_len` may be NULL. */
weft_status weft_version_to_json(const weft_version* version, char** out, size_t* out_len);
/** Parses [[replica,counter],...] into a new version vector owned by the caller. */
weft_status weft_version_from_json(const char* json, size_t len, weft_version** out);

/* ---- documents ---------------------------------------------------------- */

typedef struct weft_doc weft_doc;

/** Limits of a replica (see weft::document_options). */
typedef struct weft_doc_options {
  uint64_t max_pending_ops; /**< ops held in the causal buffer; default 65,536 */
  uint64_t max_pending_ids; /**< ids those ops may span; default 4,194,304 */
  uint64_t max_op_ids;      /**< ids one remote op may use; default 1,048,576 */
} weft_doc_options;

/** The default options. */
weft_doc_options weft_doc_options_default(void);

/** Makes an empty replica. `replica` must be unique among live replicas of
 * this document and below 2^53 (pick it at random, e.g. from getrandom()).
 * `options` may be NULL for the defaults. Errors: INVALID_ARGUMENT for
 * replica 0 or >= 2^53. */
weft_status weft_doc_new(uint64_t replica, const weft_doc_options* options, weft_doc** out);
/** Loads a snapshot made by weft_doc_encode_snapshot() into a new replica
 * that makes local edits as `replica` (use a fresh id unless this process
 * is the only one ever to have used the old one). Errors: CORRUPT_DATA,
 * TRUNCATED_DATA, UNSUPPORTED_VERSION — whatever the bytes, never UB. */
weft_status weft_doc_load(const uint8_t* snapshot, size_t len, uint64_t replica, const weft_doc_options* options,
                          weft_doc** out);
/** Frees a replica. NULL is ignored. */
void weft_doc_free(weft_doc* doc);

/** This replica's id. */
uint64_t weft_doc_replica(const weft_doc* doc);
/** Visible length in code points. O(1). */
uint64_t weft_doc_length(const weft_doc* doc);
/** Operations waiting in the causal buffer for their dependencies. */
uint64_t weft_doc_pending_ops(const weft_doc* doc);
/** Where character (replica, counter) is now: its code point position in
 * *out. WEFT_ERR_INVALID_ARGUMENT when it is deleted or no character of this
 * document (unknown, or an id an erase used). Not thread-safe (it moves the
 * document's lookup cursor). */
weft_status weft_doc_position_of(weft_doc* doc, uint64_t replica, uint64_t counter, uint64_t* out);
/** The id of the visible character at code point `position`.
 * WEFT_ERR_INVALID_ARGUMENT when position >= length. Not thread-safe. */
weft_status weft_doc_id_at(weft_doc* doc, uint64_t position, uint64_t* replica, uint64_t* counter);
/** The visible text as UTF-8, NUL-terminated (`*out_len` excludes the NUL).
 * `*out` is the caller's: weft_free() it. `out_len` may be NULL. O(size). */
weft_status weft_doc_text(const weft_doc* doc, char** out, size_t* out_len);
/** A new copy of this replica's version vector, owned by the caller. */
weft_status weft_doc_version(const weft_doc* doc, weft_version** out);

/** Inserts `len` bytes of UTF-8 `text` before code point `position` and
 * appends the resulting op to `outbox` (may be NULL when nothing is sent,
 * e.g. a purely local document). Errors: INVALID_ARGUMENT when position >
 * length, the text is empty or not UTF-8; LIMIT_EXCEEDED. The change
 * callback is not called for local edits: the editor made them. */
weft_status weft_doc_insert(weft_doc* doc, uint64_t position, const char* text, size_t len, weft_ops* outbox);
/** Deletes `count` code points from `position` and appends the op to
 * `outbox` (may be NULL). Errors: INVALID_ARGUMENT when the range is empty or
 * passes the end; LIMIT_EXCEEDED. */
weft_status weft_doc_erase(weft_doc* doc, uint64_t position, uint64_t count, weft_ops* outbox);

/** One change of the visible text made by remote ops, for patching the
 * editor's view. `position` counts code points in the text as it is after
 * the changes reported before this one (apply them in order). */
typedef struct weft_change {
  int is_insert;       /**< 1: `length` code points `text` inserted; 0: `length` erased */
  uint64_t position;
  uint64_t length;
  const char* text;    /**< inserted UTF-8 (not NUL-terminated; NULL for an erase), valid during the callback only */
  size_t text_len;     /**< bytes of text */
} weft_change;

/** Receives each change made by weft_doc_apply(), synchronously, on the
 * calling thread. It must not call weft_doc_* on the same document. */
typedef void (*weft_change_fn)(void* user_data, const weft_change* change);

/** Sets (or with NULL clears) the change callback of `doc`. `user_data` is
 * passed back unchanged and not owned. */
void weft_doc_set_change_callback(weft_doc* doc, weft_change_fn fn, void* user_data);

/** Applies remote ops in list order. Ops whose dependencies are missing are
 * buffered and applied when they arrive; known ops are ignored. The visible
 * changes go to the change callback; the ops actually applied (trimmed to
 * what was new, and buffered ops they unblocked, in a causal order) are
 * appended to `applied` unless it is NULL. A failing op is skipped and the
 * others are still applied (as the server does): the result is the first
 * error, and weft_last_error() names the op's index. Errors:
 * INVALID_OPERATION, PENDING_BUFFER_FULL, LIMIT_EXCEEDED. */
weft_status weft_doc_apply(weft_doc* doc, const weft_ops* ops, weft_ops* applied);

/** Appends to `out` every op a replica at version `peer` lacks, in an order
 * it can apply without buffering (for answering a sync, or for sending the
 * server what it lacks after the server's `sync` message). */
weft_status weft_doc_ops_since(const weft_doc* doc, const weft_version* peer, weft_ops* out);

/** Encodes the whole replica as a snapshot (docs/encoding.md; buffered ops
 * are not included). `*out` is the caller's: weft_free() it. */
weft_status weft_doc_encode_snapshot(const weft_doc* doc, uint8_t** out, size_t* out_len);

/* ---- offsets -------------------------------------------------------------- */

/** Code points in the first `byte_offset` bytes of UTF-8 `text` (clamped to
 * `len`), for editors that count bytes. */
uint64_t weft_utf8_code_points(const char* text, size_t len, size_t byte_offset);
/** Byte offset of code point `cp` in UTF-8 `text` (`len` when past the end). */
size_t weft_utf8_byte_offset(const char* text, size_t len, uint64_t cp);
/** Code point index of UTF-16 offset `u16` in UTF-8 `text` (editors that
 * count UTF-16 units; an offset inside a surrogate pair rounds down). */
uint64_t weft_code_point_of_utf16(const char* text, size_t len, uint64_t u16);
/** UTF-16 units before code point `cp` of UTF-8 `text`. */
uint64_t weft_utf16_of_code_point(const char* text, size_t len, uint64_t cp);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_WEFT_H */
