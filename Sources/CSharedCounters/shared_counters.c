#include "shared_counters.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SC_MAGIC 0x31524e434d43504dULL  /* "MPCMCNR1" */
#define SC_CLAIMING 1ULL

typedef struct {
    uint64_t state;   /* 0 free, 1 being claimed, else the name's hash | 2 (published) */
    uint64_t value;
    char key[SC_KEY_BYTES];
} sc_slot_t;

typedef struct {
    uint64_t seq;     /* odd while being written */
    uint64_t time;
    char text[SC_ERROR_TEXT];
} sc_error_t;

typedef struct {
    uint64_t magic;
    uint64_t slots;
    uint64_t error_head;
    int32_t pids[SC_PID_SLOTS];
    sc_error_t errors[SC_ERROR_SLOTS];
} sc_header_t;

struct sc_table {
    void *base;
    size_t size;
    sc_header_t *header;
    sc_slot_t *slots;
    uint32_t capacity;
};

static uint64_t hash_key(const char *k, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)k[i]; h *= 1099511628211ULL; }
    return h | 2ULL;  /* never 0 or 1 */
}

sc_table *sc_open(const char *path, uint32_t slots) {
    if (slots == 0) { errno = EINVAL; return NULL; }
    size_t size = sizeof(sc_header_t) + (size_t)slots * sizeof(sc_slot_t);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) { int e = errno; close(fd); errno = e; return NULL; }
    /* Growing is safe for every process; a shorter file is new or from an older layout. */
    if ((size_t)st.st_size < size && ftruncate(fd, (off_t)size) != 0) { int e = errno; close(fd); errno = e; return NULL; }
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (base == MAP_FAILED) { errno = e; return NULL; }
    sc_table *t = calloc(1, sizeof *t);
    if (!t) { munmap(base, size); errno = ENOMEM; return NULL; }
    t->base = base;
    t->size = size;
    t->header = base;
    t->slots = (sc_slot_t *)((char *)base + sizeof(sc_header_t));
    uint64_t expected = 0;
    if (__atomic_compare_exchange_n(&t->header->magic, &expected, SC_MAGIC, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&t->header->slots, slots, __ATOMIC_RELEASE);
    } else if (expected != SC_MAGIC) {
        sc_close(t); errno = EPROTO; return NULL;
    }
    uint64_t recorded = __atomic_load_n(&t->header->slots, __ATOMIC_ACQUIRE);
    /* Every process probes with the same modulus: the first opener's slot count wins. */
    t->capacity = (recorded && recorded <= slots) ? (uint32_t)recorded : slots;
    return t;
}

void sc_close(sc_table *t) {
    if (!t) return;
    munmap(t->base, t->size);
    free(t);
}

uint32_t sc_capacity(const sc_table *t) { return t->capacity; }

int64_t sc_slot(sc_table *t, const char *key, size_t key_len) {
    if (key_len == 0 || key_len >= SC_KEY_BYTES) return -1;
    uint64_t h = hash_key(key, key_len);
    for (uint32_t probe = 0; probe < t->capacity; probe++) {
        uint32_t i = (uint32_t)((h + probe) % t->capacity);
        sc_slot_t *s = &t->slots[i];
        uint64_t state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        if (state == 0) {
            uint64_t expected = 0;
            if (__atomic_compare_exchange_n(&s->state, &expected, SC_CLAIMING, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                memcpy(s->key, key, key_len);
                s->key[key_len] = 0;
                __atomic_store_n(&s->state, h, __ATOMIC_RELEASE);
                return i;
            }
            state = expected;
        }
        /* Another process is writing this slot's name: wait for it (a few stores). */
        for (int spins = 0; state == SC_CLAIMING && spins < 1000000; spins++) {
            state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        }
        if (state == h && strncmp(s->key, key, SC_KEY_BYTES) == 0) return i;
    }
    return -1;
}

void sc_add(sc_table *t, int64_t slot, uint64_t delta) {
    if (slot < 0 || (uint64_t)slot >= t->capacity) return;
    __atomic_fetch_add(&t->slots[slot].value, delta, __ATOMIC_RELAXED);
}

void sc_max(sc_table *t, int64_t slot, uint64_t value) {
    if (slot < 0 || (uint64_t)slot >= t->capacity) return;
    uint64_t *p = &t->slots[slot].value;
    uint64_t seen = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (seen < value && !__atomic_compare_exchange_n(p, &seen, value, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
}

int sc_read(const sc_table *t, uint32_t index, char *key_out, size_t key_cap, uint64_t *value_out) {
    if (index >= t->capacity || key_cap == 0) return 0;
    const sc_slot_t *s = &t->slots[index];
    uint64_t state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
    if (state < 2) return 0;
    size_t n = strnlen(s->key, SC_KEY_BYTES);
    if (n >= key_cap) n = key_cap - 1;
    memcpy(key_out, s->key, n);
    key_out[n] = 0;
    *value_out = __atomic_load_n(&s->value, __ATOMIC_RELAXED);
    return 1;
}

static int pid_alive(int32_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

int sc_register_pid(sc_table *t, int32_t pid) {
    for (int i = 0; i < SC_PID_SLOTS; i++) {
        int32_t *p = &t->header->pids[i];
        int32_t seen = __atomic_load_n(p, __ATOMIC_ACQUIRE);
        if (seen != 0 && pid_alive(seen)) continue;
        if (__atomic_compare_exchange_n(p, &seen, pid, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return 1;
    }
    return 0;
}

void sc_unregister_pid(sc_table *t, int32_t pid) {
    for (int i = 0; i < SC_PID_SLOTS; i++) {
        int32_t expected = pid;
        __atomic_compare_exchange_n(&t->header->pids[i], &expected, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    }
}

uint32_t sc_live_pids(sc_table *t) {
    uint32_t live = 0;
    for (int i = 0; i < SC_PID_SLOTS; i++) {
        int32_t seen = __atomic_load_n(&t->header->pids[i], __ATOMIC_ACQUIRE);
        if (seen == 0) continue;
        if (pid_alive(seen)) live++;
        else __atomic_compare_exchange_n(&t->header->pids[i], &seen, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    }
    return live;
}

void sc_push_error(sc_table *t, uint64_t unix_time, const char *text, size_t text_len) {
    uint64_t n = __atomic_fetch_add(&t->header->error_head, 1, __ATOMIC_ACQ_REL);
    sc_error_t *e = &t->header->errors[n % SC_ERROR_SLOTS];
    __atomic_store_n(&e->seq, 2 * n + 1, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    if (text_len >= SC_ERROR_TEXT) text_len = SC_ERROR_TEXT - 1;
    e->time = unix_time;
    memcpy(e->text, text, text_len);
    e->text[text_len] = 0;
    __atomic_store_n(&e->seq, 2 * n + 2, __ATOMIC_RELEASE);
}

int sc_read_error(const sc_table *t, uint32_t n, uint64_t *time_out, char *text_out, size_t text_cap) {
    uint64_t head = __atomic_load_n(&t->header->error_head, __ATOMIC_ACQUIRE);
    if (n >= SC_ERROR_SLOTS || n >= head || text_cap == 0) return 0;
    uint64_t index = head - 1 - n;
    const sc_error_t *e = &t->header->errors[index % SC_ERROR_SLOTS];
    uint64_t before = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
    if (before != 2 * index + 2) return 0;
    uint64_t when = e->time;
    size_t len = strnlen(e->text, SC_ERROR_TEXT);
    if (len >= text_cap) len = text_cap - 1;
    memcpy(text_out, e->text, len);
    text_out[len] = 0;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&e->seq, __ATOMIC_ACQUIRE) != before) return 0;
    *time_out = when;
    return 1;
}
