#ifndef MCP_FCGI_CFASTCGI_SHIM_H
#define MCP_FCGI_CFASTCGI_SHIM_H
#include <fastcgi.h>
#include <fcgiapp.h>
#include <fcgios.h>
#include <stddef.h>

/* libfcgi 2.4's private reader state (FCGX_Stream_Data in fcgiapp.c, the same since 1996),
   mirrored up to the field read here: where the raw bytes read from the connection end. */
typedef struct {
    unsigned char *buff;
    int bufflen;
    unsigned char *mBuff;
    unsigned char *buffStop;
} mcp_fcgx_reader_data_head;

/* Raw bytes (record headers included) a reader has read from its connection but not handed
   out yet; -1 when the mirrored layout does not fit the stream, which callers treat as
   "nothing buffered". libfcgi's params and stdin share one reader, so the bytes nginx sent
   with the params are here, not in the socket, when the body is first read. */
static inline long mcp_fcgx_reader_buffered(const FCGX_Stream *stream) {
    if (stream == NULL || !stream->isReader || stream->data == NULL) return -1;
    const mcp_fcgx_reader_data_head *d = (const mcp_fcgx_reader_data_head *)stream->data;
    if (d->buff == NULL || d->buffStop == NULL || d->bufflen <= 0) return -1;
    if (stream->rdNext < d->buff || stream->rdNext > d->buffStop || d->buffStop > d->buff + d->bufflen) return -1;
    return (long)(d->buffStop - stream->rdNext);
}
#endif
