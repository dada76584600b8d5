// OpenBLAS's CBLAS interface for SidecarCore's embedder (Debian: libopenblas-dev).
// Debian installs cblas.h under /usr/include/x86_64-linux-gnu (or the aarch64 equivalent)
// through the alternatives system, which is on the default include path.
#ifndef SIDECAR_COPENBLAS_SHIM_H
#define SIDECAR_COPENBLAS_SHIM_H

#include <cblas.h>

#endif
