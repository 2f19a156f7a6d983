/* A complete minimal embedding of the weft core in C (docs/embedding.md).
 *
 * Two replicas stand for two editors: each edits locally, the ops travel as
 * the protocol's JSON (here through a string instead of a WebSocket), the
 * change callback patches the receiving editor's view, and a snapshot saves
 * and restores a replica. Build: cc main.c $(pkg-config --cflags --libs weft)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/weft.h>

/* The editor's view: here a plain string the callback keeps in step. */
typedef struct {
  char text[1024];
} view;

static void on_change(void* user, const weft_change* c) {
  view* v = (view*)user;
  size_t len = strlen(v->text);
  /* Positions are code points; the view counts bytes. */
  size_t at = weft_utf8_byte_offset(v->text, len, c->position);
  if (c->is_insert) {
    if (len + c->text_len >= sizeof v->text) return;
    memmove(v->text + at + c->text_len, v->text + at, len - at + 1);
    memcpy(v->text + at, c->text, c->text_len);
  } else {
    size_t end = weft_utf8_byte_offset(v->text, len, c->position + c->length);
    memmove(v->text + at, v->text + end, len - end + 1);
  }
}

/* Stops the example with the library's message when a call fails. */
static void check(weft_status st, const char* what) {
  if (st == WEFT_OK) return;
  fprintf(stderr, "%s: %s (%s)\n", what, weft_status_message(st), weft_last_error());
  exit(1);
}

int main(void) {
  weft_doc *alice = NULL, *bob = NULL;
  check(weft_doc_new(1001, NULL, &alice), "new");
  check(weft_doc_new(2002, NULL, &bob), "new");
  view bob_view = {""};
  weft_doc_set_change_callback(bob, on_change, &bob_view);

  /* Alice types; every local edit appends an op to her outbox. */
  weft_ops* outbox = NULL;
  check(weft_ops_new(&outbox), "ops");
  check(weft_doc_insert(alice, 0, "Hello, world", 12, outbox), "insert");
  check(weft_doc_erase(alice, 5, 7, outbox), "erase");
  check(weft_doc_insert(alice, 5, " \xe2\x9c\x93", 4, outbox), "insert"); /* " ✓" */

  /* Send: the JSON goes in {"type":"ops","doc":"...","ops":<json>}. */
  char* json = NULL;
  check(weft_ops_to_json(outbox, &json, NULL), "to_json");
  printf("wire: %s\n", json);
  weft_ops_clear(outbox);

  /* Receive: parse and apply; the callback patches Bob's view. */
  weft_ops* inbox = NULL;
  check(weft_ops_new(&inbox), "ops");
  check(weft_ops_from_json(inbox, json, strlen(json)), "from_json");
  weft_free(json);
  check(weft_doc_apply(bob, inbox, NULL), "apply");
  printf("bob's view: %s\n", bob_view.text);

  /* Save and restore (e.g. when the editor closes and reopens the file). */
  uint8_t* snapshot = NULL;
  size_t snapshot_len = 0;
  check(weft_doc_encode_snapshot(bob, &snapshot, &snapshot_len), "snapshot");
  weft_doc* restored = NULL;
  check(weft_doc_load(snapshot, snapshot_len, 3003, NULL, &restored), "load");
  weft_free(snapshot);
  char* text = NULL;
  check(weft_doc_text(restored, &text, NULL), "text");
  printf("restored: %s (%zu bytes of snapshot)\n", text, snapshot_len);
  int same = strcmp(text, bob_view.text) == 0 && strcmp(text, "Hello \xe2\x9c\x93") == 0;
  weft_free(text);

  weft_ops_free(outbox);
  weft_ops_free(inbox);
  weft_doc_free(alice);
  weft_doc_free(bob);
  weft_doc_free(restored);
  return same ? 0 : 1;
}
