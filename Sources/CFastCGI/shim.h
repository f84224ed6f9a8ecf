#ifndef MCP_FCGI_CFASTCGI_SHIM_H
#define MCP_FCGI_CFASTCGI_SHIM_H
#include <fastcgi.h>
#include <fcgiapp.h>
#include <fcgios.h>
#include <stddef.h>

/* libfcgi 2.4's private reader state (FCGX_Stream_Data in fcgiapp.c, the same since 1996),
   mirrored up to the fields read here. */
typedef struct {
    unsigned char *buff;
    int bufflen;
    unsigned char *mBuff;
    unsigned char *buffStop;  /* the end of the raw bytes read from the connection */
    int type;
    int eorStop;
    int skip;                 /* the record's content is being skipped */
    int contentLen;           /* content of the current record not yet handed out */
    int paddingLen;           /* padding of the current record not yet skipped */
    int isAnythingWritten;
    int rawWrite;
    FCGX_Request *reqDataPtr; /* the request the stream belongs to */
} mcp_fcgx_reader_data_head;

/* Raw bytes (record headers included) a reader has read from its connection but not handed
   out yet; -1 when the mirrored layout does not fit the stream. libfcgi's params and stdin
   share one reader, so the bytes nginx sent with the params are here, not in the socket,
   when the body is first read. */
static inline long mcp_fcgx_reader_buffered(const FCGX_Stream *stream) {
    if (stream == NULL || !stream->isReader || stream->data == NULL) return -1;
    const mcp_fcgx_reader_data_head *d = (const mcp_fcgx_reader_data_head *)stream->data;
    if (d->buff == NULL || d->buffStop == NULL || d->bufflen <= 0) return -1;
    if (stream->rdNext < d->buff || stream->rdNext > d->buffStop || d->buffStop > d->buff + d->bufflen) return -1;
    if (d->contentLen < 0 || d->paddingLen < 0 || d->paddingLen > 255) return -1;
    return (long)(d->buffStop - stream->rdNext);
}

/* 1 when the reader's next refill needs no read from its connection: the rest of the current
   record's content has a byte buffered, or the padding to skip, the next record's header and
   (when that record has content) a byte of it are buffered, that header being one of this
   stream's own records (FastCGI 1, the stream's type, the request's id: any other record makes
   the refill skip it or answer it and read on). 0 when it may read, and whenever the layout
   does not fit. */
static inline int mcp_fcgx_refill_needs_no_read(const FCGX_Stream *stream) {
    long raw = mcp_fcgx_reader_buffered(stream);
    if (raw <= 0) return 0;
    const mcp_fcgx_reader_data_head *d = (const mcp_fcgx_reader_data_head *)stream->data;
    if (d->skip) return 0;
    if (d->contentLen > 0) return 1;
    long header = (long)d->paddingLen;
    if (raw < header + FCGI_HEADER_LEN) return 0;
    const unsigned char *h = stream->rdNext + header;
    if (d->reqDataPtr == NULL || h[0] != FCGI_VERSION_1 || h[1] != d->type) return 0;
    if (((h[2] << 8) | h[3]) != d->reqDataPtr->requestId) return 0;
    int contentLength = (h[4] << 8) | h[5];
    return contentLength == 0 || raw > header + FCGI_HEADER_LEN;
}
#endif
