/*
 * zlib_inflate.h: zlib decompression behind a plain C call, for the
 * compressed elements of MATLAB v5 files (SBD's .mat label maps).
 */
#ifndef SEGKIT_ZLIB_INFLATE_H
#define SEGKIT_ZLIB_INFLATE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  ZI_OK = 0,
  ZI_ERR_CORRUPT = 1,   /* not a zlib stream, or damaged */
  ZI_ERR_TRUNCATED = 2, /* the stream ends before its end marker */
  ZI_ERR_MEMORY = 3,
  ZI_ERR_LIMIT = 4,     /* the stream inflates to more than `max_out` bytes */
} zi_status;

/* Inflates a whole zlib stream (header and Adler-32 included) to at most
   `max_out` bytes (a few bytes may claim gigabytes). On ZI_OK `*out` holds
   `*out_size` bytes, released with `zi_free`; otherwise `message` (of
   `message_size` bytes, may be NULL) receives the reason. */
zi_status zi_inflate(const uint8_t *in, size_t in_size, size_t max_out, uint8_t **out, size_t *out_size,
                     char *message, size_t message_size);

void zi_free(void *buffer);

#ifdef __cplusplus
}
#endif
#endif
