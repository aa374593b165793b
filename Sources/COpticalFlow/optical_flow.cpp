#include "optical_flow.h"

#include <opencv2/core.hpp>
#include <opencv2/core/version.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/video/tracking.hpp>

#include <cstdio>
#include <exception>

static thread_local char last_error[512];

static of_status fail(const char *message) {
  std::snprintf(last_error, sizeof last_error, "%s", message);
  return 1;
}

extern "C" const char *of_opencv_version(void) { return CV_VERSION; }

extern "C" const char *of_last_error(void) { return last_error; }

static cv::Mat to_gray(const uint8_t *pixels, int width, int height, int channels) {
  // The caller's buffer is only read: the const_cast lets a Mat header wrap it.
  cv::Mat image(height, width, CV_8UC(channels), const_cast<uint8_t *>(pixels));
  if (channels == 1) return image;
  cv::Mat gray;
  cv::cvtColor(image, gray, channels == 3 ? cv::COLOR_RGB2GRAY : cv::COLOR_RGBA2GRAY);
  return gray;
}

extern "C" of_status of_dis(const uint8_t *from, const uint8_t *to, int32_t width, int32_t height,
                            int32_t channels, of_preset preset, int32_t upscale, float *flow) {
  if (width <= 0 || height <= 0) return fail("optical flow needs non-empty images");
  if (channels != 1 && channels != 3 && channels != 4) return fail("optical flow needs 1, 3 or 4 channels");
  if (preset < OF_PRESET_ULTRAFAST || preset > OF_PRESET_MEDIUM) return fail("unknown DIS preset");
  if (upscale < 1 || upscale > 8) return fail("the DIS upscale factor must be 1 to 8");
  try {
    cv::Mat a = to_gray(from, width, height, channels), b = to_gray(to, width, height, channels);
    cv::Ptr<cv::DISOpticalFlow> dis = cv::DISOpticalFlow::create(static_cast<int>(preset));
    cv::Mat uv;
    if (upscale > 1) {
      cv::Mat large_a, large_b, large_uv;
      cv::resize(a, large_a, cv::Size(), upscale, upscale, cv::INTER_CUBIC);
      cv::resize(b, large_b, cv::Size(), upscale, upscale, cv::INTER_CUBIC);
      dis->calc(large_a, large_b, large_uv);
      cv::resize(large_uv, uv, cv::Size(width, height), 0, 0, cv::INTER_AREA);
      uv /= static_cast<double>(upscale);
    } else {
      dis->calc(a, b, uv);
    }
    cv::Mat planes[2] = {cv::Mat(height, width, CV_32F, flow),
                         cv::Mat(height, width, CV_32F, flow + static_cast<size_t>(width) * height)};
    cv::split(uv, planes);
    return 0;
  } catch (const cv::Exception &e) {
    return fail(e.what());
  } catch (const std::exception &e) {
    return fail(e.what());
  } catch (...) {
    return fail("unknown OpenCV failure");
  }
}
