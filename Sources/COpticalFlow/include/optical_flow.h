/*
 * optical_flow.h: plain C entry points over OpenCV's DIS optical flow.
 * No C++ exception crosses this header: failures return a non-zero status and
 * `of_last_error()` gives OpenCV's message (thread-local, kept until the next
 * failing call on the same thread).
 */
#ifndef SEGKIT_OPTICAL_FLOW_H
#define SEGKIT_OPTICAL_FLOW_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t of_status;

/* OpenCV's DISOpticalFlow presets, same numbering. */
typedef enum { OF_PRESET_ULTRAFAST = 0, OF_PRESET_FAST = 1, OF_PRESET_MEDIUM = 2 } of_preset;

/* The OpenCV version linked in, e.g. "4.6.0". */
const char *of_opencv_version(void);
const char *of_last_error(void);

/* Dense flow from `from` to `to`: both 8-bit, width x height, `channels` 1
   (gray), 3 (RGB) or 4 (RGBA), interleaved. `flow` receives 2 x height x width
   floats: the dx plane, then the dy plane, so that from(x, y) ~ to(x + dx, y + dy).
   `upscale` (1 to 8): both frames are enlarged that many times (bicubic) before DIS
   and the flow is brought back (area average, vectors divided): on small frames DIS's
   patches and pyramid otherwise start coarser than the objects. */
of_status of_dis(const uint8_t *from, const uint8_t *to, int32_t width, int32_t height, int32_t channels,
                 of_preset preset, int32_t upscale, float *flow);

#ifdef __cplusplus
}
#endif
#endif
