#include "image_codecs.h"
#include "codec_internal.h"

#include <png.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

static _Thread_local char last_error[512];

const char *ic_versions(void) {
  static char text[64];
  snprintf(text, sizeof text, "libpng %s, libjpeg %d", PNG_LIBPNG_VER_STRING, JPEG_LIB_VERSION);
  return text;
}

const char *ic_last_error(void) { return last_error; }

ic_status ic_fail(ic_status code, const char *format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(last_error, sizeof last_error, format, args);
  va_end(args);
  return code;
}

void ic_free(void *buffer) { free(buffer); }

ic_format ic_sniff(const uint8_t *data, size_t size) {
  static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size >= 8 && memcmp(data, png_magic, 8) == 0) return IC_PNG;
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return IC_JPEG;
  return IC_UNKNOWN;
}
