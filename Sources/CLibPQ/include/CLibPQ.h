#ifndef MCP_FCGI_CLIBPQ_H
#define MCP_FCGI_CLIBPQ_H
// libpq, loaded on first use (dlopen) rather than at process start: it pulls in some twenty
// shared libraries (Kerberos, LDAP, SASL, GnuTLS, ...) that every process of a SQLite
// deployment would bind at start and never call. The types and constants come from libpq's
// own header (libpq-dev); the calls go through these wrappers.
#include <postgresql/libpq-fe.h>

/// Loads libpq, once per process: NULL when it is usable, else why not. The two calls below
/// that take no handle load it first too, and fail (NULL) when it cannot be loaded.
const char *mcp_pq_load_error(void);

PGconn *mcp_pq_connectdb_params(const char *const *keywords, const char *const *values, int expand_dbname);
PQconninfoOption *mcp_pq_conninfo_parse(const char *conninfo, char **errmsg);

// These take a connection, a result or memory libpq gave out, which exist only once it is loaded.
ConnStatusType mcp_pq_status(const PGconn *conn);
PGTransactionStatusType mcp_pq_transaction_status(const PGconn *conn);
char *mcp_pq_error_message(const PGconn *conn);
int mcp_pq_server_version(const PGconn *conn);
void mcp_pq_finish(PGconn *conn);
PGresult *mcp_pq_exec(PGconn *conn, const char *query);
PGresult *mcp_pq_exec_params(PGconn *conn, const char *command, int n_params, const char *const *param_values);
ExecStatusType mcp_pq_result_status(const PGresult *res);
char *mcp_pq_result_error_field(const PGresult *res, int field_code);
int mcp_pq_ntuples(const PGresult *res);
int mcp_pq_nfields(const PGresult *res);
int mcp_pq_getisnull(const PGresult *res, int row, int column);
char *mcp_pq_getvalue(const PGresult *res, int row, int column);
void mcp_pq_clear(PGresult *res);
void mcp_pq_freemem(void *ptr);
void mcp_pq_conninfo_free(PQconninfoOption *options);
#endif
