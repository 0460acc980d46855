//go:build !cgo

package ringbuffer

// Without cgo the C core cannot be compiled, and every other file of the
// package is left out; this one line makes the build fail with the reason
// instead of with "undefined: ringbuffer.NewRingBuffer" at every use.
var _ int = "ringbuffer needs cgo: set CGO_ENABLED=1, have a C compiler"
