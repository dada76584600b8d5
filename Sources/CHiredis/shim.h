#ifndef SIDECAR_CHIREDIS_SHIM_H
#define SIDECAR_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>

#endif
