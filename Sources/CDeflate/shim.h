#ifndef GNT_MOVE_CDEFLATE_SHIM_H
#define GNT_MOVE_CDEFLATE_SHIM_H
#include <libdeflate.h>
#endif
