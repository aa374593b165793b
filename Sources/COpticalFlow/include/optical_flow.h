/*
 * optical_flow.h: plain C entry points over OpenCV's DIS optical flow.
 * No C++ exception crosses this header.
 */
#ifndef SEGKIT_OPTICAL_FLOW_H
#define SEGKIT_OPTICAL_FLOW_H

#ifdef __cplusplus
extern "C" {
#endif

/* The OpenCV version linked in, e.g. "4.6.0". */
const char *of_opencv_version(void);

#ifdef __cplusplus
}
#endif
#endif
