#include "zlib_inflate.h"

#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

static void set_message(char *message, size_t size, const char *text) {
  if (message && size > 0) snprintf(message, size, "%s", text ? text : "unknown zlib error");
}

zi_status zi_inflate(const uint8_t *in, size_t in_size, size_t max_out, uint8_t **out, size_t *out_size,
                     char *message, size_t message_size) {
  *out = NULL;
  *out_size = 0;
  z_stream stream = {0};
  if (inflateInit(&stream) != Z_OK) {
    set_message(message, message_size, "inflateInit failed");
    return ZI_ERR_MEMORY;
  }
  /* The inflated size is not stored; start at 4x and double as needed. */
  size_t capacity = in_size < max_out / 4 ? in_size * 4 + 64 : max_out + 1;
  if (capacity > max_out + 1) capacity = max_out + 1;
  uint8_t *buffer = malloc(capacity);
  if (!buffer) {
    inflateEnd(&stream);
    set_message(message, message_size, "out of memory");
    return ZI_ERR_MEMORY;
  }
  stream.next_in = (Bytef *)in;
  size_t consumed = 0, produced = 0;
  int result = Z_OK;
  while (result != Z_STREAM_END) {
    if (produced == capacity) {
      /* One byte past the limit tells a stream of exactly max_out bytes from a longer one. */
      if (produced > max_out) {
        free(buffer);
        inflateEnd(&stream);
        set_message(message, message_size, "inflates past the limit");
        return ZI_ERR_LIMIT;
      }
      size_t grown_capacity = capacity <= max_out / 2 ? capacity * 2 : max_out + 1;
      uint8_t *grown = realloc(buffer, grown_capacity);
      if (!grown) {
        free(buffer);
        inflateEnd(&stream);
        set_message(message, message_size, "out of memory");
        return ZI_ERR_MEMORY;
      }
      buffer = grown;
      capacity = grown_capacity;
    }
    /* avail_in/avail_out are 32-bit: feed at most 1 GiB at a time. */
    size_t in_chunk = in_size - consumed, out_chunk = capacity - produced;
    stream.avail_in = (uInt)(in_chunk < (1u << 30) ? in_chunk : (1u << 30));
    stream.avail_out = (uInt)(out_chunk < (1u << 30) ? out_chunk : (1u << 30));
    stream.next_out = buffer + produced;
    uInt in_before = stream.avail_in, out_before = stream.avail_out;
    result = inflate(&stream, Z_NO_FLUSH);
    consumed += in_before - stream.avail_in;
    produced += out_before - stream.avail_out;
    if (produced > max_out) {
      free(buffer);
      inflateEnd(&stream);
      set_message(message, message_size, "inflates past the limit");
      return ZI_ERR_LIMIT;
    }
    if (result == Z_STREAM_END) break;
    if (result == Z_BUF_ERROR || (result == Z_OK && consumed == in_size && stream.avail_out > 0)) {
      /* No progress possible: the input ran out before the end marker. */
      if (consumed == in_size) {
        free(buffer);
        inflateEnd(&stream);
        set_message(message, message_size, "compressed data ends early");
        return ZI_ERR_TRUNCATED;
      }
      continue;
    }
    if (result != Z_OK) {
      set_message(message, message_size, stream.msg);
      free(buffer);
      inflateEnd(&stream);
      return result == Z_MEM_ERROR ? ZI_ERR_MEMORY : ZI_ERR_CORRUPT;
    }
  }
  inflateEnd(&stream);
  *out = buffer;
  *out_size = produced;
  return ZI_OK;
}

void zi_free(void *buffer) { free(buffer); }
