/*
 * image_codecs.h: plain C entry points over libpng and libjpeg-turbo.
 * libpng and libjpeg report errors by longjmp, which Swift cannot survive;
 * this layer catches them (setjmp in every entry point) and turns them into
 * status codes and a message.
 *
 * Conventions
 * - Every coding call returns an `ic_status`: IC_OK (0) on success. After a
 *   failure `ic_last_error()` returns the library's message; the text lives in
 *   thread-local storage until the next failing call on the same thread.
 * - Buffers returned through out-parameters are owned by the caller and
 *   released with `ic_free`.
 * - Pixels are 8-bit, row-major, channels interleaved (H x W x C).
 */
#ifndef SEGKIT_IMAGE_CODECS_H
#define SEGKIT_IMAGE_CODECS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t ic_status;

typedef enum {
  IC_OK = 0,
  IC_ERR_FORMAT = 1,      /* not a PNG or JPEG */
  IC_ERR_CORRUPT = 2,     /* truncated or damaged data */
  IC_ERR_UNSUPPORTED = 3, /* a valid file of a kind this layer does not decode */
  IC_ERR_ARGUMENT = 4,    /* invalid arguments from the caller */
  IC_ERR_MEMORY = 5,
} ic_error_code;

typedef enum { IC_UNKNOWN = 0, IC_PNG = 1, IC_JPEG = 2 } ic_format;

/* How a PNG's pixels come out. */
typedef enum {
  /* RGB: gray and palette expanded, alpha dropped, 16-bit reduced to 8. */
  IC_DECODE_RGB = 0,
  /* The stored channels: gray 1, RGB 3, with alpha 4 (gray+alpha as RGBA);
     palette expanded to RGB; 16-bit reduced to 8. */
  IC_DECODE_NATIVE = 1,
  /* One channel of label values: palette PNGs give palette indices, gray PNGs
     (8 bits or fewer) their values unscaled; anything else is an error. */
  IC_DECODE_LABEL = 2,
} ic_decode_mode;

/* The libpng and libjpeg versions linked in, e.g. "libpng 1.6.39, libjpeg 62". */
const char *ic_versions(void);
const char *ic_last_error(void);
void ic_free(void *buffer);

/* The format from the first bytes of a file. */
ic_format ic_sniff(const uint8_t *data, size_t size);

/* Width and height from the headers only. */
ic_status ic_image_size(const uint8_t *data, size_t size, int32_t *width, int32_t *height);

ic_status ic_png_decode(const uint8_t *data, size_t size, ic_decode_mode mode, int32_t *width,
                        int32_t *height, int32_t *channels, uint8_t **pixels);

/* Gray JPEGs come out with 1 channel when `gray_ok`, otherwise as RGB; CMYK is converted to RGB. */
ic_status ic_jpeg_decode(const uint8_t *data, size_t size, int32_t gray_ok, int32_t *width,
                         int32_t *height, int32_t *channels, uint8_t **pixels);

/* channels 1, 3 or 4. With `palette` (palette_count RGB triples, 1 to 256) a
   1-channel image is written as palette indices. */
ic_status ic_png_encode(const uint8_t *pixels, int32_t width, int32_t height, int32_t channels,
                        const uint8_t *palette, int32_t palette_count, int32_t compression,
                        uint8_t **out, size_t *out_size);

/* channels 1 or 3; quality 1 to 100; 4:2:0 chroma subsampling. */
ic_status ic_jpeg_encode(const uint8_t *pixels, int32_t width, int32_t height, int32_t channels,
                         int32_t quality, uint8_t **out, size_t *out_size);

#ifdef __cplusplus
}
#endif
#endif
