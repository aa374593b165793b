#include "codec_internal.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

/* libpng's errors longjmp back to the setjmp in each entry point; the message
   is kept here first so the caller can read it. */
static void on_error(png_structp png, png_const_charp message) {
  ic_fail(IC_ERR_CORRUPT, "%s", message);
  png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp message) {
  (void)png;
  (void)message; /* e.g. "iCCP: known incorrect sRGB profile": harmless, and stderr is not ours */
}

typedef struct {
  const uint8_t *data;
  size_t size;
  size_t offset;
} reader;

static void read_bytes(png_structp png, png_bytep out, png_size_t count) {
  reader *r = (reader *)png_get_io_ptr(png);
  if (count > r->size - r->offset) png_error(png, "truncated PNG: file ends early");
  memcpy(out, r->data + r->offset, count);
  r->offset += count;
}

ic_status ic_png_decode(const uint8_t *data, size_t size, ic_decode_mode mode, int32_t *width,
                        int32_t *height, int32_t *channels, uint8_t **pixels) {
  *pixels = NULL;
  if (ic_sniff(data, size) != IC_PNG) return ic_fail(IC_ERR_FORMAT, "not a PNG file");
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, on_error, on_warning);
  if (!png) return ic_fail(IC_ERR_MEMORY, "out of memory");
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    return ic_fail(IC_ERR_MEMORY, "out of memory");
  }
  reader r = {data, size, 0};
  /* volatile: modified between setjmp and a possible longjmp. */
  uint8_t *volatile buffer = NULL;
  png_bytep *volatile rows = NULL;
  volatile ic_status status = IC_ERR_CORRUPT;
  if (setjmp(png_jmpbuf(png))) {
    free(buffer);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return status;
  }
  png_set_read_fn(png, &r, read_bytes);
  /* Label maps often hold indices past the palette's end (255 = void with a
     short palette); those are values, not damage. */
  png_set_benign_errors(png, 1);
  png_set_check_for_invalid_index(png, 0);
  png_read_info(png, info);
  png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);

  if (mode == IC_DECODE_LABEL) {
    if (type != PNG_COLOR_TYPE_PALETTE && type != PNG_COLOR_TYPE_GRAY) {
      status = IC_ERR_UNSUPPORTED;
      png_error(png, "a label map must be a palette or 8-bit gray PNG, not a colour PNG");
    }
    if (depth == 16) {
      status = IC_ERR_UNSUPPORTED;
      png_error(png, "a label map must be a palette or 8-bit gray PNG, not 16-bit");
    }
    png_set_packing(png); /* 1, 2, 4-bit indices/values unscaled, one per byte */
  } else {
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_strip_16(png);
    if (mode == IC_DECODE_RGB) {
      png_set_strip_alpha(png);
      if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    } else if (type == PNG_COLOR_TYPE_GRAY_ALPHA) {
      png_set_gray_to_rgb(png);
    }
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);

  int c = png_get_channels(png, info);
  size_t row_bytes = png_get_rowbytes(png, info);
  if (row_bytes != (size_t)w * (size_t)c) {
    status = IC_ERR_UNSUPPORTED;
    png_error(png, "unsupported PNG pixel layout");
  }
  if (w == 0 || h == 0 || (size_t)h > IC_MAX_PIXEL_BYTES / row_bytes) {
    png_error(png, "PNG image size out of range");
  }
  buffer = (uint8_t *)malloc(row_bytes * h);
  rows = (png_bytep *)malloc(sizeof(png_bytep) * h);
  if (!buffer || !rows) {
    status = IC_ERR_MEMORY;
    png_error(png, "out of memory");
  }
  for (png_uint_32 y = 0; y < h; y++) rows[y] = buffer + (size_t)y * row_bytes;
  png_read_image(png, rows);
  png_read_end(png, NULL);

  free(rows);
  png_destroy_read_struct(&png, &info, NULL);
  *width = (int32_t)w;
  *height = (int32_t)h;
  *channels = c;
  *pixels = buffer;
  return IC_OK;
}

typedef struct {
  uint8_t *data;
  size_t size;
  size_t capacity;
} writer;

static void write_bytes(png_structp png, png_bytep bytes, png_size_t count) {
  writer *w = (writer *)png_get_io_ptr(png);
  if (w->size + count > w->capacity) {
    size_t capacity = w->capacity ? w->capacity : 4096;
    while (capacity < w->size + count) capacity *= 2;
    uint8_t *grown = (uint8_t *)realloc(w->data, capacity);
    if (!grown) png_error(png, "out of memory");
    w->data = grown;
    w->capacity = capacity;
  }
  memcpy(w->data + w->size, bytes, count);
  w->size += count;
}

static void flush_bytes(png_structp png) { (void)png; }

ic_status ic_png_encode(const uint8_t *pixels, int32_t width, int32_t height, int32_t channels,
                        const uint8_t *palette, int32_t palette_count, int32_t compression,
                        uint8_t **out, size_t *out_size) {
  *out = NULL;
  *out_size = 0;
  if (width <= 0 || height <= 0) return ic_fail(IC_ERR_ARGUMENT, "cannot write an empty %dx%d image", width, height);
  int type;
  switch (channels) {
  case 1: type = palette ? PNG_COLOR_TYPE_PALETTE : PNG_COLOR_TYPE_GRAY; break;
  case 3: type = PNG_COLOR_TYPE_RGB; break;
  case 4: type = PNG_COLOR_TYPE_RGB_ALPHA; break;
  default: return ic_fail(IC_ERR_ARGUMENT, "cannot write a PNG with %d channels", channels);
  }
  if (palette && (channels != 1 || palette_count < 1 || palette_count > 256))
    return ic_fail(IC_ERR_ARGUMENT, "a palette PNG needs 1 channel and 1 to 256 colours");
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, on_error, on_warning);
  if (!png) return ic_fail(IC_ERR_MEMORY, "out of memory");
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, NULL);
    return ic_fail(IC_ERR_MEMORY, "out of memory");
  }
  writer w = {NULL, 0, 0};
  if (setjmp(png_jmpbuf(png))) {
    free(w.data);
    png_destroy_write_struct(&png, &info);
    return IC_ERR_CORRUPT;
  }
  png_set_write_fn(png, &w, write_bytes, flush_bytes);
  png_set_compression_level(png, compression);
  png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, type, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (palette) {
    png_color colors[256];
    for (int i = 0; i < palette_count; i++) {
      colors[i].red = palette[3 * i];
      colors[i].green = palette[3 * i + 1];
      colors[i].blue = palette[3 * i + 2];
    }
    png_set_PLTE(png, info, colors, palette_count);
  }
  png_write_info(png, info);
  size_t row_bytes = (size_t)width * (size_t)channels;
  for (int32_t y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(pixels + (size_t)y * row_bytes));
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  *out = w.data;
  *out_size = w.size;
  return IC_OK;
}
