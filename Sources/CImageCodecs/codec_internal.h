/* Shared by the codec files: the per-thread error message. */
#ifndef SEGKIT_CODEC_INTERNAL_H
#define SEGKIT_CODEC_INTERNAL_H

#include "image_codecs.h"

/* Formats the message for ic_last_error and returns `code`. */
ic_status ic_fail(ic_status code, const char *format, ...);

/* Largest decoded image accepted, in bytes: a corrupt header must not make us
   allocate gigabytes. */
#define IC_MAX_PIXEL_BYTES ((size_t)1 << 31)

#endif
