#include "CCurl.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded;
static char load_error[256];

static CURLcode (*p_global_init)(long);
static CURL *(*p_easy_init)(void);
static void (*p_easy_cleanup)(CURL *);
static void (*p_easy_reset)(CURL *);
static CURLcode (*p_easy_perform)(CURL *);
static const char *(*p_easy_strerror)(CURLcode);
static CURLcode (*p_easy_setopt)(CURL *, CURLoption, ...);
static CURLcode (*p_easy_getinfo)(CURL *, CURLINFO, ...);
static struct curl_slist *(*p_slist_append)(struct curl_slist *, const char *);
static void (*p_slist_free_all)(struct curl_slist *);

static void *resolve(void *lib, const char *name) {
    void *f = dlsym(lib, name);
    if (!f && !load_error[0]) snprintf(load_error, sizeof load_error, "libcurl has no %s", name);
    return f;
}

static void load(void) {
    // The soname the build linked against before (libcurl4-openssl-dev: libcurl.so.4).
    void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(load_error, sizeof load_error, "cannot load libcurl.so.4: %s", dlerror());
        return;
    }
    p_global_init = resolve(lib, "curl_global_init");
    p_easy_init = resolve(lib, "curl_easy_init");
    p_easy_cleanup = resolve(lib, "curl_easy_cleanup");
    p_easy_reset = resolve(lib, "curl_easy_reset");
    p_easy_perform = resolve(lib, "curl_easy_perform");
    p_easy_strerror = resolve(lib, "curl_easy_strerror");
    p_easy_setopt = resolve(lib, "curl_easy_setopt");
    p_easy_getinfo = resolve(lib, "curl_easy_getinfo");
    p_slist_append = resolve(lib, "curl_slist_append");
    p_slist_free_all = resolve(lib, "curl_slist_free_all");
    if (load_error[0]) return;
    if (p_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
        snprintf(load_error, sizeof load_error, "curl_global_init failed");
        return;
    }
    loaded = 1;
}

int mcp_curl_load(void) {
    pthread_once(&once, load);
    return loaded ? 0 : -1;
}

const char *mcp_curl_load_error(void) {
    pthread_once(&once, load);
    return load_error[0] ? load_error : NULL;
}

CURL *mcp_curl_easy_init(void) { return mcp_curl_load() == 0 ? p_easy_init() : NULL; }
// Handles exist only once libcurl is loaded, so the calls that take one need no check.
void mcp_curl_easy_cleanup(CURL *h) { if (h) p_easy_cleanup(h); }
void mcp_curl_easy_reset(CURL *h) { p_easy_reset(h); }
CURLcode mcp_curl_easy_perform(CURL *h) { return p_easy_perform(h); }
const char *mcp_curl_easy_strerror(CURLcode code) {
    return mcp_curl_load() == 0 ? p_easy_strerror(code) : "libcurl is not available";
}
struct curl_slist *mcp_curl_slist_append(struct curl_slist *list, const char *s) {
    return mcp_curl_load() == 0 ? p_slist_append(list, s) : NULL;
}
void mcp_curl_slist_free_all(struct curl_slist *list) { if (list) p_slist_free_all(list); }

CURLcode mcp_curl_setopt_long(CURL *h, CURLoption o, long v) { return p_easy_setopt(h, o, v); }
CURLcode mcp_curl_setopt_string(CURL *h, CURLoption o, const char *v) { return p_easy_setopt(h, o, v); }
CURLcode mcp_curl_setopt_pointer(CURL *h, CURLoption o, void *v) { return p_easy_setopt(h, o, v); }

CURLcode mcp_curl_set_safe_defaults(CURL *h, int allow_plain_http, const char *ca_bundle, long connect_timeout_ms,
                                    long total_timeout_ms, long max_response_bytes, const char *user_agent) {
    CURLcode c;
#define MCP_SET(option, value) if ((c = p_easy_setopt(h, option, value)) != CURLE_OK) return c
    MCP_SET(CURLOPT_PROTOCOLS_STR, allow_plain_http ? "http,https" : "https");
    MCP_SET(CURLOPT_FOLLOWLOCATION, 0L);
    MCP_SET(CURLOPT_SSL_VERIFYPEER, 1L);
    MCP_SET(CURLOPT_SSL_VERIFYHOST, 2L);
    if (ca_bundle) { MCP_SET(CURLOPT_CAINFO, ca_bundle); }
    MCP_SET(CURLOPT_NOSIGNAL, 1L);  /* worker threads: no SIGALRM-based DNS timeouts */
    MCP_SET(CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    MCP_SET(CURLOPT_TIMEOUT_MS, total_timeout_ms);
    MCP_SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_response_bytes);
    MCP_SET(CURLOPT_USERAGENT, user_agent);
    MCP_SET(CURLOPT_ACCEPT_ENCODING, "");  /* every encoding libcurl has; it decompresses before our size check */
#undef MCP_SET
    return CURLE_OK;
}
CURLcode mcp_curl_setopt_write_callback(CURL *h, size_t (*cb)(char *, size_t, size_t, void *)) {
    return p_easy_setopt(h, CURLOPT_WRITEFUNCTION, cb);
}
CURLcode mcp_curl_setopt_header_callback(CURL *h, size_t (*cb)(char *, size_t, size_t, void *)) {
    return p_easy_setopt(h, CURLOPT_HEADERFUNCTION, cb);
}
CURLcode mcp_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return p_easy_getinfo(h, i, v); }
