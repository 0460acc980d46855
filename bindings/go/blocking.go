package ringbuffer

/*
#include "shim.h"
*/
import "C"

import (
	"context"
	"runtime"
	"time"
)

// A blocking call waits in C for at most this long before Go checks its
// context again, so cancellation is seen within one slice even though C
// knows nothing of contexts.
const waitSlice = 50 * time.Millisecond

// sliceTimeout returns how long the next wait in C may last, or false when
// ctx's deadline has passed.
func sliceTimeout(ctx context.Context) (C.int64_t, bool) {
	d := waitSlice
	if deadline, ok := ctx.Deadline(); ok {
		left := time.Until(deadline)
		if left <= 0 {
			return 0, false
		}
		if left < d {
			d = left
		}
	}
	return C.int64_t(d.Nanoseconds()), true
}

// waitFailed converts a context's end, or a deadline that passed before the
// context noticed, into the context's error.
func waitFailed(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return context.DeadlineExceeded
}

// retryWait reports whether a wait result means "no outcome yet, wait again".
func retryWait(res int64) bool {
	return res == int64(C.MRB_ETIMEDOUT) || res == int64(C.MRB_EINTR)
}

// ReadMsgContext returns the next message, waiting for one until ctx is done
// (then it returns ctx.Err()). A write from any process wakes it. Other
// errors as ReadMsg; Close from another goroutine makes it return ErrClosed.
func (r *RingBuffer) ReadMsgContext(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// A message already there is taken without reading the deadline or the
	// clock: the common case of a busy ring.
	if msg, err := r.ReadMsg(); err != ErrBufferEmpty {
		return msg, err
	}
	for {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		timeout, ok := sliceTimeout(ctx)
		if !ok {
			return nil, waitFailed(ctx)
		}
		msg, res, err := r.readWaitSlice(timeout)
		if !retryWait(res) {
			return msg, err
		}
	}
}

// readWaitSlice holds the read mutex for a single slice, so that another
// reader's context is not held up for longer.
func (r *RingBuffer) readWaitSlice(timeout C.int64_t) ([]byte, int64, error) {
	r.readMu.Lock()
	defer r.readMu.Unlock()
	for {
		res := int64(C.gomrb_read_wait(r.handle(), bytePointer(r.scratch),
			C.size_t(len(r.scratch)), timeout))
		runtime.KeepAlive(r)
		if retryWait(res) {
			return nil, res, nil
		}
		msg, retry, err := r.takeFromScratch(res)
		if !retry {
			return msg, res, err
		}
	}
}

// WriteMsgContext writes msg, waiting for free space until ctx is done (then
// it returns ctx.Err()). Reads in any process wake it. Other errors as
// WriteMsg; a message that can never fit gives ErrInvalidSize at once.
func (r *RingBuffer) WriteMsgContext(ctx context.Context, msg []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Room already there is taken without reading the deadline or the clock.
	if _, err := r.WriteMsg(msg); err != ErrBufferFull {
		return err
	}
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		timeout, ok := sliceTimeout(ctx)
		if !ok {
			return waitFailed(ctx)
		}
		res := int64(C.gomrb_write_wait(r.handle(), bytePointer(msg), C.size_t(len(msg)), timeout))
		runtime.KeepAlive(r)
		switch {
		case res == 0:
			return nil
		case !retryWait(res):
			return codeError(res)
		}
	}
}

// ReadMsgIntoContext is ReadMsgInto that waits, until ctx is done, while
// there is no message (then it returns ctx.Err()). It allocates nothing.
func (r *RingBuffer) ReadMsgIntoContext(ctx context.Context, dst []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	for {
		n, err := r.ReadMsgInto(dst)
		if err != ErrBufferEmpty {
			return n, err
		}
		if err := r.waitReadable(ctx); err != nil {
			return 0, err
		}
	}
}

// waitReadable waits one slice for a message; nil when one may be there
// (or the slice ended), ctx's error or the ring's otherwise.
func (r *RingBuffer) waitReadable(ctx context.Context) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	timeout, ok := sliceTimeout(ctx)
	if !ok {
		return waitFailed(ctx)
	}
	r.readMu.Lock()
	res := int64(C.mrb_wait_readable(r.handle(), timeout))
	r.readMu.Unlock()
	runtime.KeepAlive(r)
	if res != 0 && !retryWait(res) {
		return codeError(res)
	}
	return nil
}

// ReadBatchContext is ReadBatchInto that waits, until ctx is done, while
// there is no message (then it returns ctx.Err()).
func (r *RingBuffer) ReadBatchContext(ctx context.Context, buf []byte, lengths []int) (int, error) {
	for {
		n, err := r.ReadBatchInto(buf, lengths)
		if err != ErrBufferEmpty {
			return n, err
		}
		if err := r.waitReadable(ctx); err != nil {
			return 0, err
		}
	}
}
