#include "CLibPQ.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded;
static char load_error[256];

static PGconn *(*p_connectdb_params)(const char *const *, const char *const *, int);
static PQconninfoOption *(*p_conninfo_parse)(const char *, char **);
static ConnStatusType (*p_status)(const PGconn *);
static PGTransactionStatusType (*p_transaction_status)(const PGconn *);
static char *(*p_error_message)(const PGconn *);
static int (*p_server_version)(const PGconn *);
static void (*p_finish)(PGconn *);
static PGresult *(*p_exec)(PGconn *, const char *);
static PGresult *(*p_exec_params)(PGconn *, const char *, int, const Oid *, const char *const *, const int *,
                                  const int *, int);
static ExecStatusType (*p_result_status)(const PGresult *);
static char *(*p_result_error_field)(const PGresult *, int);
static int (*p_ntuples)(const PGresult *);
static int (*p_nfields)(const PGresult *);
static int (*p_getisnull)(const PGresult *, int, int);
static char *(*p_getvalue)(const PGresult *, int, int);
static void (*p_clear)(PGresult *);
static void (*p_freemem)(void *);
static void (*p_conninfo_free)(PQconninfoOption *);

// Every function this target forwards, by name, and where its address goes.
static const struct { const char *name; void **slot; } functions[] = {
    {"PQconnectdbParams", (void **)&p_connectdb_params}, {"PQconninfoParse", (void **)&p_conninfo_parse},
    {"PQstatus", (void **)&p_status}, {"PQtransactionStatus", (void **)&p_transaction_status},
    {"PQerrorMessage", (void **)&p_error_message}, {"PQserverVersion", (void **)&p_server_version},
    {"PQfinish", (void **)&p_finish}, {"PQexec", (void **)&p_exec}, {"PQexecParams", (void **)&p_exec_params},
    {"PQresultStatus", (void **)&p_result_status}, {"PQresultErrorField", (void **)&p_result_error_field},
    {"PQntuples", (void **)&p_ntuples}, {"PQnfields", (void **)&p_nfields}, {"PQgetisnull", (void **)&p_getisnull},
    {"PQgetvalue", (void **)&p_getvalue}, {"PQclear", (void **)&p_clear}, {"PQfreemem", (void **)&p_freemem},
    {"PQconninfoFree", (void **)&p_conninfo_free},
};

static void load(void) {
    // The soname the build linked against before (libpq5, headers from libpq-dev).
    void *lib = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(load_error, sizeof load_error, "cannot load libpq.so.5 (Debian package libpq5): %s", dlerror());
        return;
    }
    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
        *functions[i].slot = dlsym(lib, functions[i].name);
        if (!*functions[i].slot) {
            snprintf(load_error, sizeof load_error, "libpq.so.5 has no %s", functions[i].name);
            return;
        }
    }
    loaded = 1;
}

// Loads libpq once per process; whether it is usable.
static int ensure_loaded(void) {
    pthread_once(&once, load);
    return loaded;
}

const char *mcp_pq_load_error(void) { return ensure_loaded() ? NULL : load_error; }

PGconn *mcp_pq_connectdb_params(const char *const *keywords, const char *const *values, int expand_dbname) {
    return ensure_loaded() ? p_connectdb_params(keywords, values, expand_dbname) : NULL;
}
PQconninfoOption *mcp_pq_conninfo_parse(const char *conninfo, char **errmsg) {
    if (errmsg) *errmsg = NULL;
    return ensure_loaded() ? p_conninfo_parse(conninfo, errmsg) : NULL;
}

ConnStatusType mcp_pq_status(const PGconn *conn) { return p_status(conn); }
PGTransactionStatusType mcp_pq_transaction_status(const PGconn *conn) { return p_transaction_status(conn); }
char *mcp_pq_error_message(const PGconn *conn) { return p_error_message(conn); }
int mcp_pq_server_version(const PGconn *conn) { return p_server_version(conn); }
void mcp_pq_finish(PGconn *conn) { if (conn) p_finish(conn); }
PGresult *mcp_pq_exec(PGconn *conn, const char *query) { return p_exec(conn, query); }
// Text parameters, text results, types inferred by the server: how every statement here is sent.
PGresult *mcp_pq_exec_params(PGconn *conn, const char *command, int n_params, const char *const *param_values) {
    return p_exec_params(conn, command, n_params, NULL, param_values, NULL, NULL, 0);
}
ExecStatusType mcp_pq_result_status(const PGresult *res) { return p_result_status(res); }
char *mcp_pq_result_error_field(const PGresult *res, int field_code) { return p_result_error_field(res, field_code); }
int mcp_pq_ntuples(const PGresult *res) { return p_ntuples(res); }
int mcp_pq_nfields(const PGresult *res) { return p_nfields(res); }
int mcp_pq_getisnull(const PGresult *res, int row, int column) { return p_getisnull(res, row, column); }
char *mcp_pq_getvalue(const PGresult *res, int row, int column) { return p_getvalue(res, row, column); }
void mcp_pq_clear(PGresult *res) { if (res) p_clear(res); }
void mcp_pq_freemem(void *ptr) { if (ptr) p_freemem(ptr); }
void mcp_pq_conninfo_free(PQconninfoOption *options) { if (options) p_conninfo_free(options); }
