#include "optical_flow.h"

#include <opencv2/core/version.hpp>

extern "C" const char *of_opencv_version(void) { return CV_VERSION; }
