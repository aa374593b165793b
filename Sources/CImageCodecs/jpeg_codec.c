#include "codec_internal.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

/* libjpeg's errors longjmp back to the setjmp in each entry point. */
typedef struct {
  struct jpeg_error_mgr base;
  jmp_buf jump;
} error_manager;

static void on_error(j_common_ptr cinfo) {
  char message[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, message);
  ic_fail(IC_ERR_CORRUPT, "%s", message);
  longjmp(((error_manager *)cinfo->err)->jump, 1);
}

/* Warnings stay quiet, except a premature end of data: libjpeg would fill the
   rest of the image with grey, and a truncated file must be reported. */
static void on_message(j_common_ptr cinfo, int level) {
  if (level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    ic_fail(IC_ERR_CORRUPT, "truncated JPEG: file ends early");
    longjmp(((error_manager *)cinfo->err)->jump, 1);
  }
}

static void install(error_manager *err) {
  jpeg_std_error(&err->base);
  err->base.error_exit = on_error;
  err->base.emit_message = on_message;
}

ic_status ic_image_size(const uint8_t *data, size_t size, int32_t *width, int32_t *height) {
  switch (ic_sniff(data, size)) {
  case IC_PNG: {
    /* IHDR is always first: signature (8), length (4), "IHDR" (4), width, height. */
    if (size < 24 || memcmp(data + 12, "IHDR", 4) != 0) return ic_fail(IC_ERR_CORRUPT, "truncated PNG header");
    *width = (int32_t)((uint32_t)data[16] << 24 | (uint32_t)data[17] << 16 | (uint32_t)data[18] << 8 | data[19]);
    *height = (int32_t)((uint32_t)data[20] << 24 | (uint32_t)data[21] << 16 | (uint32_t)data[22] << 8 | data[23]);
    if (*width <= 0 || *height <= 0) return ic_fail(IC_ERR_CORRUPT, "PNG header with an invalid size");
    return IC_OK;
  }
  case IC_JPEG: {
    struct jpeg_decompress_struct cinfo;
    error_manager err;
    cinfo.err = &err.base;
    install(&err);
    if (setjmp(err.jump)) {
      jpeg_destroy_decompress(&cinfo);
      return IC_ERR_CORRUPT;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    *width = (int32_t)cinfo.image_width;
    *height = (int32_t)cinfo.image_height;
    jpeg_destroy_decompress(&cinfo);
    return IC_OK;
  }
  default:
    return ic_fail(IC_ERR_FORMAT, "not a PNG or JPEG file");
  }
}

ic_status ic_jpeg_decode(const uint8_t *data, size_t size, int32_t gray_ok, int32_t *width,
                         int32_t *height, int32_t *channels, uint8_t **pixels) {
  *pixels = NULL;
  if (ic_sniff(data, size) != IC_JPEG) return ic_fail(IC_ERR_FORMAT, "not a JPEG file");
  struct jpeg_decompress_struct cinfo;
  error_manager err;
  cinfo.err = &err.base;
  install(&err);
  uint8_t *volatile buffer = NULL;
  uint8_t *volatile cmyk_row = NULL;
  volatile ic_status status = IC_ERR_CORRUPT;
  if (setjmp(err.jump)) {
    free(buffer);
    free(cmyk_row);
    jpeg_destroy_decompress(&cinfo);
    return status;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, (unsigned long)size);
  jpeg_read_header(&cinfo, TRUE);

  int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  if (cmyk) {
    cinfo.out_color_space = JCS_CMYK;
  } else if (cinfo.jpeg_color_space == JCS_GRAYSCALE && gray_ok) {
    cinfo.out_color_space = JCS_GRAYSCALE;
  } else {
    cinfo.out_color_space = JCS_RGB;
  }
  jpeg_start_decompress(&cinfo);
  size_t w = cinfo.output_width, h = cinfo.output_height;
  int c = cmyk ? 3 : cinfo.output_components;
  if (w == 0 || h == 0 || h > IC_MAX_PIXEL_BYTES / (w * 4)) {
    status = IC_ERR_CORRUPT;
    ERREXIT(&cinfo, JERR_IMAGE_TOO_BIG);
  }
  buffer = (uint8_t *)malloc(w * h * (size_t)c);
  if (cmyk) cmyk_row = (uint8_t *)malloc(w * 4);
  if (!buffer || (cmyk && !cmyk_row)) {
    status = IC_ERR_MEMORY;
    ERREXIT(&cinfo, JERR_OUT_OF_MEMORY);
  }
  while (cinfo.output_scanline < h) {
    size_t y = cinfo.output_scanline;
    uint8_t *row = buffer + y * w * (size_t)c;
    if (!cmyk) {
      JSAMPROW rows[1] = {row};
      jpeg_read_scanlines(&cinfo, rows, 1);
      continue;
    }
    JSAMPROW rows[1] = {cmyk_row};
    jpeg_read_scanlines(&cinfo, rows, 1);
    /* Adobe writes CMYK inverted; either way R = (1 - C)(1 - K) in ink terms. */
    for (size_t x = 0; x < w; x++) {
      unsigned k = cmyk_row[4 * x + 3];
      for (int i = 0; i < 3; i++) {
        unsigned v = cmyk_row[4 * x + i];
        row[3 * x + i] = cinfo.saw_Adobe_marker ? (uint8_t)((v * k + 127) / 255)
                                                : (uint8_t)(((255 - v) * (255 - k) + 127) / 255);
      }
    }
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  free(cmyk_row);
  *width = (int32_t)w;
  *height = (int32_t)h;
  *channels = c;
  *pixels = buffer;
  return IC_OK;
}

ic_status ic_jpeg_encode(const uint8_t *pixels, int32_t width, int32_t height, int32_t channels,
                         int32_t quality, uint8_t **out, size_t *out_size) {
  *out = NULL;
  *out_size = 0;
  if (width <= 0 || height <= 0) return ic_fail(IC_ERR_ARGUMENT, "cannot write an empty %dx%d image", width, height);
  if (channels != 1 && channels != 3) return ic_fail(IC_ERR_ARGUMENT, "cannot write a JPEG with %d channels", channels);
  if (quality < 1 || quality > 100) return ic_fail(IC_ERR_ARGUMENT, "JPEG quality %d is outside 1...100", quality);
  struct jpeg_compress_struct cinfo;
  error_manager err;
  cinfo.err = &err.base;
  install(&err);
  /* jpeg_mem_dest grows these itself; volatile because they change after setjmp. */
  unsigned char *volatile buffer = NULL;
  volatile unsigned long size = 0;
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&cinfo);
    free(buffer);
    return IC_ERR_CORRUPT;
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, (unsigned char **)&buffer, (unsigned long *)&size);
  cinfo.image_width = (JDIMENSION)width;
  cinfo.image_height = (JDIMENSION)height;
  cinfo.input_components = channels;
  cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  size_t row_bytes = (size_t)width * (size_t)channels;
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW rows[1] = {(JSAMPROW)(pixels + cinfo.next_scanline * row_bytes)};
    jpeg_write_scanlines(&cinfo, rows, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  *out = buffer;
  *out_size = size;
  return IC_OK;
}
