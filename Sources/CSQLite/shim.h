#ifndef MCP_FCGI_CSQLITE_SHIM_H
#define MCP_FCGI_CSQLITE_SHIM_H
#include <sqlite3.h>
// SQLITE_TRANSIENT is a cast macro Swift cannot import; sqlite copies the bytes when given it.
static inline void (*mcp_sqlite_transient(void))(void *) { return SQLITE_TRANSIENT; }
#endif
