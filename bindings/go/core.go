package ringbuffer

// The C core is compiled into this package by cgo from the flat copies
// mrb.h and core_*.c/core_*.h that sync_core.sh generates from ../../core
// (see "Build design" in doc.go). These flags match core/BUILD.bazel.

/*
#cgo CFLAGS: -std=c11 -D_GNU_SOURCE -O2
#cgo LDFLAGS: -pthread
*/
import "C"
