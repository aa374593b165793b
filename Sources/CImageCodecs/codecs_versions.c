#include "image_codecs.h"

#include <png.h>
#include <stdio.h>
#include <jpeglib.h>

const char *ic_versions(void) {
  static char text[64];
  snprintf(text, sizeof text, "libpng %s, libjpeg %d", PNG_LIBPNG_VER_STRING, JPEG_LIB_VERSION);
  return text;
}
