#ifndef MCP_FCGI_CLIBPQ_SHIM_H
#define MCP_FCGI_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
