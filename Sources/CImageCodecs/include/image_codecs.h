/*
 * image_codecs.h: plain C entry points over libpng and libjpeg-turbo.
 * libpng and libjpeg report errors by longjmp, which Swift cannot survive;
 * this layer turns them into status codes and a message.
 */
#ifndef SEGKIT_IMAGE_CODECS_H
#define SEGKIT_IMAGE_CODECS_H

#ifdef __cplusplus
extern "C" {
#endif

/* The libpng and libjpeg versions linked in, e.g. "libpng 1.6.39, libjpeg-turbo 62". */
const char *ic_versions(void);

#ifdef __cplusplus
}
#endif
#endif
