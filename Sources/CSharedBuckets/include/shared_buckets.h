// Token buckets in a file mapped by every process of a host, so a rate limit holds exactly
// across FastCGI workers, mod_fcgid processes and one-shot CGI runs without a database write.
// One process-shared robust mutex guards the table; an update is logged before it is applied,
// so a holder killed mid-update leaves either all or none of its take behind.
#ifndef SHARED_BUCKETS_H
#define SHARED_BUCKETS_H
#include <stddef.h>
#include <stdint.h>

/// Buckets one take may touch at once (all or none).
#define SB_MAX_TAKE 8
/// Slots probed from a key's home slot; beyond them the table counts as full.
#define SB_MAX_PROBE 64

typedef struct sb_table sb_table;

/// A bucket named by a 128-bit digest of its key, with the limits of this request.
typedef struct {
    uint8_t digest[16];
    double per_minute;
    double burst;
} sb_bucket;

/// Opens (creating, mode 0600, never through a symlink) and maps the table. A file that is not
/// a regular file owned by this user (any user, for root) with no group/other access, or whose header is not this
/// layout, is refused. Returns NULL and sets errno (EPROTO: foreign or corrupted; EPERM: owner or mode).
sb_table *sb_open(const char *path, uint32_t slots);
void sb_close(sb_table *t);
uint32_t sb_capacity(const sb_table *t);

/// Takes one token from every bucket, or from none. 0: taken; 1: refused, *wait_out holds the
/// seconds until every bucket has a token; -1: error with errno (ENOSPC: no free or reusable
/// slot near a new key's home; EINVAL: bad limits or a repeated key; ENOTRECOVERABLE, EPROTO).
int sb_take(sb_table *t, const sb_bucket *buckets, uint32_t count, double now, double *wait_out);

/// A number every process reads without a system call; `sb_bump_generation` raises it (blocks changed).
uint64_t sb_generation(const sb_table *t);
uint64_t sb_bump_generation(sb_table *t);
#endif
