/* ---- portability macros: the C and C++ dialects and compilers the code builds with ------ */
#ifndef O2S_RESTRICT /* C99's restrict, under the name C++ compilers know it by */
#if defined(__cplusplus)
#define O2S_RESTRICT __restrict
#else
#define O2S_RESTRICT restrict
#endif
#endif
#define O2S_MIN(a, b) ((a) < (b) ? (a) : (b))
#define O2S_MAX(a, b) ((a) > (b) ? (a) : (b))
