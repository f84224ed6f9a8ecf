#include "shared_buckets.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SB_MAGIC 0x3154454b4355424dULL  /* "MBUCKET1" */
#define SB_VERSION 1u

/* A bucket: its key's digest, its level at `updated`, and the limits it was last taken with. */
typedef struct {
    uint8_t digest[16];
    double tokens;
    double updated;
    double per_minute;
    double burst;
} sb_state_t;

typedef struct {
    uint32_t state;   /* 0 free (never used), 1 holds a bucket */
    uint32_t unused;
    sb_state_t bucket;
} sb_slot_t;

/* What a take will write, logged before it is applied (a redo log of one entry per bucket). */
typedef struct {
    uint32_t slot;
    uint32_t unused;
    sb_state_t bucket;
} sb_intent_t;

typedef struct {
    uint64_t magic;
    uint32_t version;
    uint32_t slots;
    uint64_t header_size;
    uint64_t slot_size;
    /* Read by every request: kept off the lock's cache line. */
    _Alignas(64) uint64_t generation;
    _Alignas(64) pthread_mutex_t lock;
    uint32_t pending_valid;
    uint32_t pending_count;
    sb_intent_t pending[SB_MAX_TAKE];
} sb_header_t;

struct sb_table {
    void *base;
    size_t size;
    sb_header_t *header;
    sb_slot_t *slots;
    uint32_t capacity;
};

static size_t table_size(uint32_t slots) { return sizeof(sb_header_t) + (size_t)slots * sizeof(sb_slot_t); }

static int fail(int fd, int error) {
    if (fd >= 0) close(fd);
    errno = error;
    return -1;
}

/* First opener (under flock) lays out the header; the magic is written last, so a creator
 * that died half-way leaves magic 0 and the next opener starts again. */
static int initialise(int fd, uint32_t slots) {
    size_t size = table_size(slots);
    if (ftruncate(fd, 0) != 0 || ftruncate(fd, (off_t)size) != 0) return -1;
    sb_header_t *h = mmap(NULL, sizeof *h, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (h == MAP_FAILED) return -1;
    pthread_mutexattr_t attr;
    int rc = pthread_mutexattr_init(&attr);
    if (rc == 0) rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (rc == 0) rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    if (rc == 0) rc = pthread_mutex_init(&h->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc == 0) {
        h->version = SB_VERSION;
        h->slots = slots;
        h->header_size = sizeof(sb_header_t);
        h->slot_size = sizeof(sb_slot_t);
        __atomic_store_n(&h->magic, SB_MAGIC, __ATOMIC_RELEASE);
    }
    munmap(h, sizeof *h);
    if (rc != 0) { errno = rc; return -1; }
    return 0;
}

/* The recorded layout must be exactly this one, sized as its header says. */
static int check_layout(int fd, off_t file_size, uint32_t *slots_out) {
    sb_header_t h;
    if (file_size < (off_t)sizeof h || pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h) return EPROTO;
    if (h.magic != SB_MAGIC || h.version != SB_VERSION || h.header_size != sizeof(sb_header_t)
        || h.slot_size != sizeof(sb_slot_t) || h.slots == 0 || (off_t)table_size(h.slots) != file_size
        || h.pending_count > SB_MAX_TAKE) return EPROTO;
    *slots_out = h.slots;
    return 0;
}

sb_table *sb_open(const char *path, uint32_t slots) {
    if (slots == 0) { errno = EINVAL; return NULL; }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) { fail(fd, errno); return NULL; }
    if (!S_ISREG(st.st_mode)) { fail(fd, EPROTO); return NULL; }
    /* root (an operator's `block`) may open the service user's file; nobody else's. */
    if ((st.st_uid != geteuid() && geteuid() != 0) || (st.st_mode & 077) != 0) { fail(fd, EPERM); return NULL; }
    if (flock(fd, LOCK_EX) != 0 || fstat(fd, &st) != 0) { fail(fd, errno); return NULL; }
    uint64_t magic = 0;
    if (st.st_size >= (off_t)sizeof magic && pread(fd, &magic, sizeof magic, 0) != (ssize_t)sizeof magic) { fail(fd, errno); return NULL; }
    if (st.st_size == 0 || magic == 0) {
        if (initialise(fd, slots) != 0 || fstat(fd, &st) != 0) { fail(fd, errno); return NULL; }
    }
    uint32_t recorded = 0;
    int bad = check_layout(fd, st.st_size, &recorded);
    if (bad) { fail(fd, bad); return NULL; }
    size_t size = table_size(recorded);
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    /* Explicitly: the mapping keeps the open file (and so its flock) alive after close. */
    flock(fd, LOCK_UN);
    close(fd);
    if (base == MAP_FAILED) { errno = e; return NULL; }
    sb_table *t = calloc(1, sizeof *t);
    if (!t) { munmap(base, size); errno = ENOMEM; return NULL; }
    t->base = base;
    t->size = size;
    t->header = base;
    t->slots = (sb_slot_t *)((char *)base + sizeof(sb_header_t));
    t->capacity = recorded;
    return t;
}

void sb_close(sb_table *t) {
    if (!t) return;
    munmap(t->base, t->size);
    free(t);
}

uint32_t sb_capacity(const sb_table *t) { return t->capacity; }

uint64_t sb_generation(const sb_table *t) { return __atomic_load_n(&t->header->generation, __ATOMIC_ACQUIRE); }

uint64_t sb_bump_generation(sb_table *t) { return __atomic_add_fetch(&t->header->generation, 1, __ATOMIC_ACQ_REL); }

static void apply_pending(sb_table *t) {
    sb_header_t *h = t->header;
    uint32_t n = h->pending_count;
    for (uint32_t i = 0; i < n && i < SB_MAX_TAKE; i++) {
        const sb_intent_t *w = &h->pending[i];
        if (w->slot >= t->capacity) continue;  /* a damaged log entry writes nothing */
        sb_slot_t *s = &t->slots[w->slot];
        s->bucket = w->bucket;
        s->state = 1;
    }
    __atomic_store_n(&h->pending_valid, 0, __ATOMIC_RELEASE);
}

/* A holder that died left the log complete (redo it) or incomplete (its take never happened). */
static int lock_table(sb_table *t) {
    int rc = pthread_mutex_lock(&t->header->lock);
    if (rc == EOWNERDEAD) {
        if (__atomic_load_n(&t->header->pending_valid, __ATOMIC_ACQUIRE)) apply_pending(t);
        rc = pthread_mutex_consistent(&t->header->lock);
    }
    if (rc != 0) { errno = rc; return -1; }
    return 0;
}

/* A bucket refilled back to its burst is the same as no bucket: its slot may be reused. */
static int full_again(const sb_state_t *b, double now) {
    double elapsed = now > b->updated ? now - b->updated : 0;
    return b->tokens + elapsed * b->per_minute / 60 >= b->burst;
}

static int chosen(const sb_intent_t *w, uint32_t n, uint32_t slot) {
    for (uint32_t i = 0; i < n; i++) if (w[i].slot == slot) return 1;
    return 0;
}

/* The key's slot (*found = 1), else where a new bucket for it goes; -1 when there is none. */
static int64_t locate(sb_table *t, const uint8_t *digest, double now, const sb_intent_t *planned, uint32_t n, int *found) {
    uint64_t home;
    memcpy(&home, digest, sizeof home);
    uint32_t probes = t->capacity < SB_MAX_PROBE ? t->capacity : SB_MAX_PROBE;
    int64_t reuse = -1;
    *found = 0;
    for (uint32_t p = 0; p < probes; p++) {
        uint32_t i = (uint32_t)((home + p) % t->capacity);
        if (chosen(planned, n, i)) continue;
        const sb_slot_t *s = &t->slots[i];
        if (s->state == 0) return reuse >= 0 ? reuse : i;
        if (memcmp(s->bucket.digest, digest, sizeof s->bucket.digest) == 0) { *found = 1; return i; }
        if (reuse < 0 && full_again(&s->bucket, now)) reuse = i;
    }
    return reuse;
}

static int valid_request(const sb_bucket *b, uint32_t count, double now) {
    if (count == 0 || count > SB_MAX_TAKE || !isfinite(now)) return 0;
    for (uint32_t i = 0; i < count; i++) {
        if (!isfinite(b[i].per_minute) || !isfinite(b[i].burst) || b[i].per_minute <= 0 || b[i].burst < 1) return 0;
        for (uint32_t j = 0; j < i; j++) if (memcmp(b[i].digest, b[j].digest, sizeof b[i].digest) == 0) return 0;
    }
    return 1;
}

int sb_take(sb_table *t, const sb_bucket *buckets, uint32_t count, double now, double *wait_out) {
    if (!valid_request(buckets, count, now)) { errno = EINVAL; return -1; }
    if (lock_table(t) != 0) return -1;
    sb_header_t *h = t->header;
    sb_intent_t planned[SB_MAX_TAKE];
    double wait = 0;
    for (uint32_t i = 0; i < count; i++) {
        const sb_bucket *b = &buckets[i];
        int found = 0;
        int64_t slot = locate(t, b->digest, now, planned, i, &found);
        if (slot < 0) { pthread_mutex_unlock(&h->lock); errno = ENOSPC; return -1; }
        double tokens = b->burst;
        if (found) {
            const sb_state_t *s = &t->slots[slot].bucket;
            double elapsed = now > s->updated ? now - s->updated : 0;
            double refilled = s->tokens + elapsed * b->per_minute / 60;
            tokens = refilled < b->burst ? refilled : b->burst;
        }
        if (tokens < 1) {
            double needed = (1 - tokens) * 60 / b->per_minute;
            if (needed > wait) wait = needed;
        }
        sb_intent_t *w = &planned[i];
        w->slot = (uint32_t)slot;
        w->unused = 0;
        memcpy(w->bucket.digest, b->digest, sizeof w->bucket.digest);
        w->bucket.tokens = tokens - 1;
        w->bucket.updated = now;
        w->bucket.per_minute = b->per_minute;
        w->bucket.burst = b->burst;
    }
    if (wait > 0) {
        pthread_mutex_unlock(&h->lock);
        *wait_out = wait;
        return 1;
    }
    memcpy(h->pending, planned, count * sizeof planned[0]);
    h->pending_count = count;
    __atomic_store_n(&h->pending_valid, 1, __ATOMIC_RELEASE);
    apply_pending(t);
    pthread_mutex_unlock(&h->lock);
    return 0;
}
