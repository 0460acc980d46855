package ringbuffer

/*
#include <stdlib.h>
#include <string.h>
#include "mrb.h"
*/
import "C"

import (
	"time"
	"unsafe"
)

// SubscribeOptions are the options of Subscribe (mrb_subscribe). The zero
// value is an unnamed durable subscriber joining at the live end.
type SubscribeOptions struct {
	// Name makes a named durable subscriber: joining with the name of one
	// whose handle is gone resumes right after the last message it
	// released (1..31 bytes).
	Name string
	// FromOldest: a new subscriber joins at the oldest message still in
	// the ring rather than at the live end.
	FromOldest bool
	// Lossy: never holds producers back; skips what it was lapped on.
	Lossy bool
	// EvictAfter > 0: evicted once it has held producers back this long.
	EvictAfter time.Duration
}

// Subscribe opens the ring at filename as a subscriber (a fan-out ring's
// reader, or a lossy tap on any ring): a handle whose read calls read the
// subscriber's own position. Close leaves the reader table (a named
// subscriber keeps its place). See mrb_subscribe in mrb.h and
// docs/SUBSCRIBERS.md.
func Subscribe(filename string, opts SubscribeOptions) (*RingBuffer, error) {
	if err := checkPath("subscribe", filename); err != nil {
		return nil, err
	}
	var copts C.struct_mrb_subscribe_options
	if opts.Lossy {
		copts.flags |= C.MRB_SUBSCRIBE_LOSSY
	}
	if opts.FromOldest {
		copts.flags |= C.MRB_SUBSCRIBE_FROM_OLDEST
	}
	if opts.EvictAfter > 0 {
		copts.flags |= C.MRB_SUBSCRIBE_EVICT
		copts.evict_after_ns = C.int64_t(opts.EvictAfter.Nanoseconds())
	}
	if opts.Name != "" {
		name := C.CString(opts.Name)
		defer C.free(unsafe.Pointer(name))
		copts.name = name
	}
	return openWith("subscribe", filename, func(ring *C.struct_mrb_ring, path *C.char) C.int {
		return C.mrb_subscribe(ring, path, &copts)
	})
}
