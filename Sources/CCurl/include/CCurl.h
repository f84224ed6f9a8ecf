#ifndef MCP_FCGI_CCURL_H
#define MCP_FCGI_CCURL_H
// libcurl, loaded on first use (dlopen) rather than at process start: it pulls in some
// thirty shared libraries (TLS, LDAP, Kerberos, SSH, IDN, ...) whose loading cost every
// CGI request about 6 ms, while most requests never make an outgoing call. The types and
// constants come from curl's own header; the calls go through these wrappers.
#include <curl/curl.h>

/// Loads libcurl and runs curl_global_init, once per process; 0 on success. Every call
/// below loads it too; a failure to load makes them fail (NULL / CURLE_FAILED_INIT).
int mcp_curl_load(void);
/// Why loading failed, or NULL.
const char *mcp_curl_load_error(void);

CURL *mcp_curl_easy_init(void);
void mcp_curl_easy_cleanup(CURL *h);
void mcp_curl_easy_reset(CURL *h);
CURLcode mcp_curl_easy_perform(CURL *h);
const char *mcp_curl_easy_strerror(CURLcode code);
struct curl_slist *mcp_curl_slist_append(struct curl_slist *list, const char *s);
void mcp_curl_slist_free_all(struct curl_slist *list);

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call; these typed wrappers can.
CURLcode mcp_curl_setopt_long(CURL *h, CURLoption o, long v);
/* The options every transfer of this project gets, in one place: https only (http only when a
   test rig asks), no redirects, certificate and host name checks on (set explicitly so nothing
   can weaken them), an optional CA bundle, no signals, timeouts, a size cap, any encoding.
   ca_bundle may be NULL. Returns the first error, or CURLE_OK. */
CURLcode mcp_curl_set_safe_defaults(CURL *h, int allow_plain_http, const char *ca_bundle, long connect_timeout_ms,
                                    long total_timeout_ms, long max_response_bytes, const char *user_agent);
CURLcode mcp_curl_setopt_string(CURL *h, CURLoption o, const char *v);
CURLcode mcp_curl_setopt_pointer(CURL *h, CURLoption o, void *v);
CURLcode mcp_curl_setopt_write_callback(CURL *h, size_t (*cb)(char *, size_t, size_t, void *));
CURLcode mcp_curl_setopt_header_callback(CURL *h, size_t (*cb)(char *, size_t, size_t, void *));
CURLcode mcp_curl_getinfo_long(CURL *h, CURLINFO i, long *v);
#endif
