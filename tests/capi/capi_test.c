/* Tests of the C API (include/weft/weft.h), written in C so that the header
 * is checked as C and the calls are made the way C embedders make them. Run
 * by ctest in the Release build and again under ASan+UBSan (which also
 * catches a leaked buffer or handle). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft/weft.h"

static int failures = 0;

#define CHECK(cond)                                                      \
  do {                                                                   \
    if (!(cond)) {                                                       \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                        \
    }                                                                    \
  } while (0)

#define CHECK_OK(expr)                                                                        \
  do {                                                                                        \
    weft_status st_ = (expr);                                                                 \
    if (st_ != WEFT_OK) {                                                                     \
      fprintf(stderr, "%s:%d: %s returned %d (%s): %s\n", __FILE__, __LINE__, #expr, (int)st_, \
              weft_status_message(st_), weft_last_error());                                   \
      ++failures;                                                                             \
    }                                                                                         \
  } while (0)

/* The document's text must equal `expected`. */
static void check_text(const weft_doc* doc, const char* expected, int line) {
  char* text = NULL;
  size_t len = 0;
  if (weft_doc_text(doc, &text, &len) != WEFT_OK) {
    fprintf(stderr, "line %d: weft_doc_text failed\n", line);
    ++failures;
    return;
  }
  if (len != strlen(expected) || memcmp(text, expected, len) != 0 || text[len] != '\0') {
    fprintf(stderr, "line %d: text is \"%s\", expected \"%s\"\n", line, text, expected);
    ++failures;
  }
  weft_free(text);
}
#define CHECK_TEXT(doc, expected) check_text((doc), (expected), __LINE__)

/* A change callback that replays changes on a plain C string, the way an
 * editor patches its buffer (positions are code points; the test text is
 * ASCII apart from where it says otherwise, so code points are bytes). */
typedef struct {
  char buf[256];
  int calls;
} mirror;

static void on_change(void* user, const weft_change* c) {
  mirror* m = (mirror*)user;
  size_t len = strlen(m->buf);
  size_t at = weft_utf8_byte_offset(m->buf, len, c->position);
  ++m->calls;
  if (c->is_insert) {
    if (len + c->text_len >= sizeof m->buf) return;
    memmove(m->buf + at + c->text_len, m->buf + at, len - at + 1);
    memcpy(m->buf + at, c->text, c->text_len);
  } else {
    size_t end = weft_utf8_byte_offset(m->buf, len, c->position + c->length);
    memmove(m->buf + at, m->buf + end, len - end + 1);
  }
}

static void test_local_edits_and_errors(void) {
  weft_doc* doc = NULL;
  CHECK_OK(weft_doc_new(7, NULL, &doc));
  CHECK(weft_doc_replica(doc) == 7);
  weft_ops* out = NULL;
  CHECK_OK(weft_ops_new(&out));
  CHECK_OK(weft_doc_insert(doc, 0, "hello world", 11, out));
  CHECK_OK(weft_doc_erase(doc, 5, 6, out));
  CHECK_OK(weft_doc_insert(doc, 5, "!", 1, NULL));
  CHECK_TEXT(doc, "hello!");
  CHECK(weft_doc_length(doc) == 6);
  CHECK(weft_ops_count(out) == 2);

  /* Errors: typed code plus a detail message; nothing changes. */
  CHECK(weft_doc_insert(doc, 99, "x", 1, out) == WEFT_ERR_INVALID_ARGUMENT);
  CHECK(strlen(weft_last_error()) > 0);
  CHECK(weft_doc_erase(doc, 3, 10, out) == WEFT_ERR_INVALID_ARGUMENT);
  CHECK(weft_doc_insert(doc, 0, "\xff", 1, out) == WEFT_ERR_INVALID_ARGUMENT);
  CHECK(weft_doc_insert(NULL, 0, "x", 1, out) == WEFT_ERR_INVALID_ARGUMENT);
  CHECK(weft_ops_count(out) == 2);
  CHECK_TEXT(doc, "hello!");
  CHECK_OK(weft_doc_insert(doc, 0, ">", 1, out));
  CHECK(strcmp(weft_last_error(), "") == 0);
  CHECK(weft_doc_new(0, NULL, &doc) == WEFT_ERR_INVALID_ARGUMENT);
  CHECK(strcmp(weft_status_message(WEFT_ERR_CORRUPT_DATA), "") != 0);

  /* Ids and positions: ">hello!" is (7,19), (7,1..5), (7,18); the erase used 12..17. */
  uint64_t pos = 99, r = 0, c = 0;
  CHECK_OK(weft_doc_position_of(doc, 7, 1, &pos));
  CHECK(pos == 1);
  CHECK_OK(weft_doc_position_of(doc, 7, 18, &pos));
  CHECK(pos == 6);
  CHECK(weft_doc_position_of(doc, 7, 7, &pos) == WEFT_ERR_INVALID_ARGUMENT); /* deleted */
  CHECK(weft_doc_position_of(doc, 7, 12, &pos) == WEFT_ERR_INVALID_ARGUMENT); /* an erase's id */
  CHECK(weft_doc_position_of(doc, 8, 1, &pos) == WEFT_ERR_INVALID_ARGUMENT); /* unknown replica */
  CHECK_OK(weft_doc_id_at(doc, 0, &r, &c));
  CHECK(r == 7 && c == 19);
  CHECK(weft_doc_id_at(doc, 7, &r, &c) == WEFT_ERR_INVALID_ARGUMENT);
  CHECK(weft_doc_id_at(doc, 0, NULL, &c) == WEFT_ERR_INVALID_ARGUMENT);

  weft_ops_free(out);
  weft_doc_free(doc);
  weft_doc_free(NULL);
  weft_ops_free(NULL);
}

static void test_two_replicas_over_json(void) {
  weft_doc *a = NULL, *b = NULL;
  CHECK_OK(weft_doc_new(1, NULL, &a));
  CHECK_OK(weft_doc_new(2, NULL, &b));
  mirror view = {"", 0};
  weft_doc_set_change_callback(b, on_change, &view);

  weft_ops* outbox = NULL;
  CHECK_OK(weft_ops_new(&outbox));
  CHECK_OK(weft_doc_insert(a, 0, "abc", 3, outbox));
  CHECK_OK(weft_doc_insert(a, 3, "def", 3, outbox));
  CHECK_OK(weft_doc_erase(a, 1, 2, outbox));

  /* To the wire and back, as an embedder speaking the protocol does. */
  char* json = NULL;
  size_t json_len = 0;
  CHECK_OK(weft_ops_to_json(outbox, &json, &json_len));
  CHECK(json != NULL && json[0] == '[' && json[json_len - 1] == ']' && strstr(json, "\"kind\":\"insert\"") != NULL);
  weft_ops* received = NULL;
  CHECK_OK(weft_ops_new(&received));
  CHECK_OK(weft_ops_from_json(received, json, json_len));
  CHECK(weft_ops_count(received) == 3);
  weft_free(json);

  weft_ops* applied = NULL;
  CHECK_OK(weft_ops_new(&applied));
  CHECK_OK(weft_doc_apply(b, received, applied));
  CHECK(weft_ops_count(applied) == 3);
  CHECK_TEXT(b, "adef");
  CHECK(strcmp(view.buf, "adef") == 0);
  CHECK(view.calls >= 3);

  /* Duplicates are ignored and change nothing. */
  int calls_before = view.calls;
  weft_ops_clear(applied);
  CHECK_OK(weft_doc_apply(b, received, applied));
  CHECK(weft_ops_count(applied) == 0);
  CHECK(view.calls == calls_before);

  /* Concurrent edits converge. */
  weft_ops *from_a = NULL, *from_b = NULL;
  CHECK_OK(weft_ops_new(&from_a));
  CHECK_OK(weft_ops_new(&from_b));
  CHECK_OK(weft_doc_insert(a, 0, "A", 1, from_a));
  /* b's own edits: its editor changed the view itself; the callback only
   * reports remote changes. */
  CHECK_OK(weft_doc_insert(b, 0, "B", 1, from_b));
  weft_change local_insert = {1, 0, 1, "B", 1};
  on_change(&view, &local_insert);
  CHECK_OK(weft_doc_erase(b, 2, 1, from_b));
  weft_change local_erase = {0, 2, 1, NULL, 0};
  on_change(&view, &local_erase);
  CHECK_OK(weft_doc_apply(a, from_b, NULL));
  CHECK_OK(weft_doc_apply(b, from_a, NULL));
  char *ta = NULL, *tb = NULL;
  CHECK_OK(weft_doc_text(a, &ta, NULL));
  CHECK_OK(weft_doc_text(b, &tb, NULL));
  CHECK(ta && tb && strcmp(ta, tb) == 0 && strlen(ta) == 5);
  CHECK(strcmp(view.buf, tb) == 0); /* the mirrored view followed every change */
  weft_free(ta);
  weft_free(tb);

  /* Malformed JSON: an error, nothing appended. */
  weft_ops_clear(received);
  CHECK(weft_ops_from_json(received, "[{\"kind\":\"insert\"", 17) == WEFT_ERR_INVALID_ARGUMENT);
  CHECK(weft_ops_from_json(received, "[{\"kind\":\"insert\",\"id\":[1,1],\"text\":\"x\",\"bogus\":1}]", 50) ==
        WEFT_ERR_INVALID_ARGUMENT);
  CHECK(weft_ops_count(received) == 0);

  weft_ops_free(outbox);
  weft_ops_free(received);
  weft_ops_free(applied);
  weft_ops_free(from_a);
  weft_ops_free(from_b);
  weft_doc_free(a);
  weft_doc_free(b);
}

static void test_out_of_order_and_invalid(void) {
  weft_doc *a = NULL, *b = NULL;
  CHECK_OK(weft_doc_new(11, NULL, &a));
  CHECK_OK(weft_doc_new(12, NULL, &b));
  weft_ops *first = NULL, *second = NULL;
  CHECK_OK(weft_ops_new(&first));
  CHECK_OK(weft_ops_new(&second));
  CHECK_OK(weft_doc_insert(a, 0, "xy", 2, first));
  CHECK_OK(weft_doc_insert(a, 1, "-", 1, second));
  /* The second op arrives first: buffered until its dependency is there. */
  CHECK_OK(weft_doc_apply(b, second, NULL));
  CHECK(weft_doc_pending_ops(b) == 1);
  CHECK_TEXT(b, "");
  CHECK_OK(weft_doc_apply(b, first, NULL));
  CHECK(weft_doc_pending_ops(b) == 0);
  CHECK_TEXT(b, "x-y");

  /* An erase naming an id that is known but is not a character (it is the
   * id of a deletion, 11:4) is rejected; the valid op after it in the same
   * list is still applied. */
  weft_ops* mixed = NULL;
  CHECK_OK(weft_ops_new(&mixed));
  CHECK_OK(weft_doc_erase(a, 1, 1, mixed));
  CHECK_OK(weft_doc_apply(b, mixed, NULL));
  CHECK_TEXT(b, "xy");
  weft_ops_clear(mixed);
  const char* bad = "[{\"kind\":\"erase\",\"id\":[99,1],\"targets\":[[11,4,1]]}]";
  CHECK_OK(weft_ops_from_json(mixed, bad, strlen(bad)));
  CHECK_OK(weft_doc_insert(a, 2, "z", 1, mixed));
  CHECK(weft_doc_apply(b, mixed, NULL) == WEFT_ERR_INVALID_OPERATION);
  CHECK(strstr(weft_last_error(), "op 0") != NULL);
  CHECK_TEXT(b, "xyz");
  weft_ops_free(mixed);
  weft_ops_free(first);
  weft_ops_free(second);
  weft_doc_free(a);
  weft_doc_free(b);
}

static void test_sync_by_version(void) {
  weft_doc *server = NULL, *editor = NULL;
  CHECK_OK(weft_doc_new(100, NULL, &server));
  CHECK_OK(weft_doc_new(200, NULL, &editor));
  CHECK_OK(weft_doc_insert(server, 0, "server text", 11, NULL));
  CHECK_OK(weft_doc_insert(editor, 0, "offline ", 8, NULL));

  /* The editor reconnects: it sends its version, the server answers with what it lacks. */
  weft_version* ev = NULL;
  CHECK_OK(weft_doc_version(editor, &ev));
  char* vjson = NULL;
  size_t vlen = 0;
  CHECK_OK(weft_version_to_json(ev, &vjson, &vlen));
  CHECK(strcmp(vjson, "[[200,8]]") == 0);
  weft_version* parsed = NULL;
  CHECK_OK(weft_version_from_json(vjson, vlen, &parsed));
  CHECK(weft_version_count(parsed) == 1 && weft_version_get(parsed, 200) == 8);
  uint64_t r = 0, c = 0;
  CHECK_OK(weft_version_entry(parsed, 0, &r, &c));
  CHECK(r == 200 && c == 8);
  CHECK(weft_version_entry(parsed, 1, &r, &c) == WEFT_ERR_INVALID_ARGUMENT);
  CHECK(weft_version_from_json("[[1,2]", 6, &ev) == WEFT_ERR_INVALID_ARGUMENT);
  weft_free(vjson);

  weft_ops* answer = NULL;
  CHECK_OK(weft_ops_new(&answer));
  CHECK_OK(weft_doc_ops_since(server, parsed, answer));
  CHECK_OK(weft_doc_apply(editor, answer, NULL));

  /* ... then the editor sends what the server lacks, by the server's version. */
  weft_version* sv = NULL;
  CHECK_OK(weft_doc_version(server, &sv));
  weft_ops* upload = NULL;
  CHECK_OK(weft_ops_new(&upload));
  CHECK_OK(weft_doc_ops_since(editor, sv, upload));
  CHECK(weft_ops_count(upload) == 1);
  CHECK_OK(weft_doc_apply(server, upload, NULL));

  /* Lowering our entry to our last ack (here: none) resends our ops the
   * server holds but never acknowledged; it takes them as duplicates. */
  weft_version_free(sv);
  sv = NULL;
  CHECK_OK(weft_doc_version(server, &sv));
  CHECK(weft_version_get(sv, 200) == 8);
  CHECK_OK(weft_version_set(sv, 200, 0));
  CHECK(weft_version_get(sv, 200) == 0 && weft_version_get(sv, 100) == 11);
  weft_ops_clear(upload);
  CHECK_OK(weft_doc_ops_since(editor, sv, upload));
  CHECK(weft_ops_count(upload) == 1);
  weft_ops* applied = NULL;
  CHECK_OK(weft_ops_new(&applied));
  CHECK_OK(weft_doc_apply(server, upload, applied));
  CHECK(weft_ops_count(applied) == 0);
  weft_ops_free(applied);
  CHECK(weft_version_set(NULL, 1, 1) == WEFT_ERR_INVALID_ARGUMENT);

  char *t1 = NULL, *t2 = NULL;
  CHECK_OK(weft_doc_text(server, &t1, NULL));
  CHECK_OK(weft_doc_text(editor, &t2, NULL));
  CHECK(strcmp(t1, t2) == 0 && strlen(t1) == 19);
  weft_free(t1);
  weft_free(t2);

  weft_version_free(ev);
  weft_version_free(parsed);
  weft_version_free(sv);
  weft_ops_free(answer);
  weft_ops_free(upload);
  weft_doc_free(server);
  weft_doc_free(editor);
}

static void test_snapshot_and_binary(void) {
  weft_doc* doc = NULL;
  CHECK_OK(weft_doc_new(5, NULL, &doc));
  weft_ops* log = NULL;
  CHECK_OK(weft_ops_new(&log));
  /* Multi-byte text: positions are code points. */
  const char* s = "h\xc3\xa9llo \xf0\x9f\x98\x80 world";
  CHECK_OK(weft_doc_insert(doc, 0, s, strlen(s), log));
  CHECK(weft_doc_length(doc) == 13);
  CHECK_OK(weft_doc_erase(doc, 6, 1, log)); /* the emoji */
  CHECK_TEXT(doc, "h\xc3\xa9llo  world");

  uint8_t* snap = NULL;
  size_t snap_len = 0;
  CHECK_OK(weft_doc_encode_snapshot(doc, &snap, &snap_len));
  weft_doc* loaded = NULL;
  CHECK_OK(weft_doc_load(snap, snap_len, 6, NULL, &loaded));
  CHECK_TEXT(loaded, "h\xc3\xa9llo  world");
  CHECK(weft_doc_replica(loaded) == 6);
  /* Every truncation is rejected, and so is a flipped bit. */
  for (size_t n = 0; n < snap_len; ++n) {
    weft_doc* bad = NULL;
    weft_status st = weft_doc_load(snap, n, 6, NULL, &bad);
    CHECK(st == WEFT_ERR_TRUNCATED_DATA || st == WEFT_ERR_CORRUPT_DATA);
    CHECK(bad == NULL);
  }
  snap[snap_len / 2] ^= 0x10;
  weft_doc* flipped = NULL;
  CHECK(weft_doc_load(snap, snap_len, 6, NULL, &flipped) == WEFT_ERR_CORRUPT_DATA);
  weft_free(snap);

  uint8_t* batch = NULL;
  size_t batch_len = 0;
  CHECK_OK(weft_ops_encode(log, &batch, &batch_len));
  weft_ops* decoded = NULL;
  CHECK_OK(weft_ops_new(&decoded));
  CHECK_OK(weft_ops_decode(decoded, batch, batch_len));
  CHECK(weft_ops_count(decoded) == 2);
  CHECK(weft_ops_decode(decoded, batch, batch_len - 1) != WEFT_OK);
  CHECK(weft_ops_count(decoded) == 2);
  weft_free(batch);

  weft_doc* replay = NULL;
  weft_doc_options opts = weft_doc_options_default();
  CHECK(opts.max_op_ids == 1048576);
  opts.max_pending_ops = 8;
  CHECK_OK(weft_doc_new(9, &opts, &replay));
  CHECK_OK(weft_doc_apply(replay, decoded, NULL));
  CHECK_TEXT(replay, "h\xc3\xa9llo  world");

  weft_ops_free(log);
  weft_ops_free(decoded);
  weft_doc_free(doc);
  weft_doc_free(loaded);
  weft_doc_free(replay);
}

static void test_offsets(void) {
  const char* s = "a\xc3\xa9\xf0\x9f\x98\x80z"; /* a é 😀 z: bytes 1,2,4,1; UTF-16 units 1,1,2,1 */
  size_t n = strlen(s);
  CHECK(weft_utf8_code_points(s, n, 3) == 2);
  CHECK(weft_utf8_code_points(s, n, 4) == 2); /* inside the emoji: rounds down */
  CHECK(weft_utf8_code_points(s, n, 100) == 4);
  CHECK(weft_utf8_byte_offset(s, n, 3) == 7);
  CHECK(weft_utf16_of_code_point(s, n, 3) == 4);
  CHECK(weft_code_point_of_utf16(s, n, 4) == 3);
  CHECK(weft_code_point_of_utf16(s, n, 3) == 2);
}

int main(void) {
  test_local_edits_and_errors();
  test_two_replicas_over_json();
  test_out_of_order_and_invalid();
  test_sync_by_version();
  test_snapshot_and_binary();
  test_offsets();
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("C API: all checks passed\n");
  return 0;
}
