// A table of named 64-bit counters in a file mapped by every process of a site, so
// counts hold across FastCGI workers, mod_fcgid processes and one-shot CGI runs.
// Slots are claimed once by name and only ever added to (atomic, lock-free).
#ifndef SHARED_COUNTERS_H
#define SHARED_COUNTERS_H
#include <stddef.h>
#include <stdint.h>

#define SC_KEY_BYTES 240
#define SC_PID_SLOTS 256
#define SC_ERROR_SLOTS 8
#define SC_ERROR_TEXT 160

typedef struct sc_table sc_table;

/// Opens (creating, mode 0600) and maps the file. Returns NULL and sets errno on failure.
sc_table *sc_open(const char *path, uint32_t slots);
void sc_close(sc_table *t);

/// The slot for a name, claiming a free one on first use; -1 when the table is full.
int64_t sc_slot(sc_table *t, const char *key, size_t key_len);
void sc_add(sc_table *t, int64_t slot, uint64_t delta);
/// Raises the slot to `value` if it is lower (for "largest seen" and timestamps).
void sc_max(sc_table *t, int64_t slot, uint64_t value);
uint32_t sc_capacity(const sc_table *t);
/// Copies a published slot's name (NUL-terminated) and value; 0 when the slot is free.
int sc_read(const sc_table *t, uint32_t index, char *key_out, size_t key_cap, uint64_t *value_out);

/// Live-process registry: a process enters its pid at start and clears it at exit.
int sc_register_pid(sc_table *t, int32_t pid);
void sc_unregister_pid(sc_table *t, int32_t pid);
/// Pids entered and still alive (dead entries are cleared on the way).
uint32_t sc_live_pids(sc_table *t);

/// A small ring of recent upstream errors (time, text).
void sc_push_error(sc_table *t, uint64_t unix_time, const char *text, size_t text_len);
/// The n-th most recent error (0 = newest); 0 when there is none or it was being overwritten.
int sc_read_error(const sc_table *t, uint32_t n, uint64_t *time_out, char *text_out, size_t text_cap);
#endif
