#ifndef GNT_MOVE_CZSTD_SHIM_H
#define GNT_MOVE_CZSTD_SHIM_H
#include <zstd.h>
#endif
