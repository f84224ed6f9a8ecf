#ifndef MCP_FCGI_CFASTCGI_SHIM_H
#define MCP_FCGI_CFASTCGI_SHIM_H
#include <fastcgi.h>
#include <fcgiapp.h>
#include <fcgios.h>
#endif
