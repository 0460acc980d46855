package ringbuffer

// The C core is compiled into this package by cgo from two generated files:
// mrb.h (the public header) and core_amalgamation.c (every core source of
// core/sources.bzl as one translation unit). gen_core.go writes them from
// ../../core; never edit them by hand (see "Build design" in doc.go).
// These flags match core/BUILD.bazel, plus -fvisibility=hidden: nothing
// built with this package (a program, a -buildmode=c-shared library)
// exports the core's C symbols; the Go API is the package's interface.

//go:generate go run gen_core.go

/*
#cgo CFLAGS: -std=c11 -D_GNU_SOURCE -O2 -fvisibility=hidden
#cgo LDFLAGS: -pthread
*/
import "C"
