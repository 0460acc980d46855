package ringbuffer

/*
#include "shim.h"
*/
import "C"

import (
	"context"
	"runtime"
	"unsafe"
)

// Hold makes reading no longer free messages (on) or frees every message
// read and stops holding (off). While holding, reads move this handle's
// cursor as usual, but the ring's space and its consumer position (where a
// consumer that replaces this one resumes) stay until ReleaseThrough: if
// the handle is closed or its process dies, the next consumer reads every
// unreleased message again. This is how a forwarder (tools/bridge) gets
// at-least-once delivery. ErrInvalidArgument with the hung-writer timeout
// (mrb_set_recovery_timeout, in C). Consumer call (attaches as consumer).
func (r *RingBuffer) Hold(on bool) error {
	var flag C.int
	if on {
		flag = 1
	}
	r.readMu.Lock()
	rc := C.mrb_hold(r.handle(), flag)
	r.readMu.Unlock()
	runtime.KeepAlive(r)
	if rc != 0 {
		return codeError(int64(rc))
	}
	return nil
}

// ReleaseThrough frees the held messages up to and including the one at
// position (as ReadBatchAt reported it). ErrStale if no held message starts
// there (released already, not read yet, not a message); ErrInvalidArgument
// when not holding.
func (r *RingBuffer) ReleaseThrough(position uint64) error {
	r.readMu.Lock()
	rc := C.mrb_release_through(r.handle(), C.uint64_t(position))
	r.readMu.Unlock()
	runtime.KeepAlive(r)
	if rc != 0 {
		return codeError(int64(rc))
	}
	return nil
}

// ReadBatchAt is ReadBatchInto that also stores each message's ring
// position (its record's byte offset since the ring was created: unique in
// the ring, growing) in positions, which must be at least as long as
// lengths.
func (r *RingBuffer) ReadBatchAt(buf []byte, lengths []int, positions []uint64) (int, error) {
	if len(lengths) == 0 || len(positions) < len(lengths) {
		return 0, ErrInvalidArgument
	}
	r.readMu.Lock()
	res := int64(C.gomrb_read_many_at(r.handle(), bytePointer(buf), C.size_t(len(buf)),
		(*C.size_t)(unsafe.Pointer(unsafe.SliceData(lengths))),
		(*C.uint64_t)(unsafe.SliceData(positions)), C.size_t(len(lengths))))
	r.readMu.Unlock()
	runtime.KeepAlive(r)
	if res < 0 {
		return 0, codeError(res)
	}
	return int(res), nil
}

// ReadBatchAtContext is ReadBatchAt that waits, until ctx is done, while
// there is no message (then it returns ctx.Err()).
func (r *RingBuffer) ReadBatchAtContext(ctx context.Context, buf []byte, lengths []int, positions []uint64) (int, error) {
	for {
		n, err := r.ReadBatchAt(buf, lengths, positions)
		if err != ErrBufferEmpty {
			return n, err
		}
		if err := r.waitReadable(ctx); err != nil {
			return 0, err
		}
	}
}
