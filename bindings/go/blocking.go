package ringbuffer

/*
#include "shim.h"
*/
import "C"

import (
	"context"
	"errors"
	"os"
	"runtime"
	"syscall"
	"time"
)

// Blocking calls do not block a thread: they wait on the handle's doorbell
// descriptor (mrb_doorbell_fd) in the runtime's netpoller, as a network read
// does, so a goroutine waiting for a ring costs a parked goroutine, not an
// OS thread. The C core is only called to read, write and arm, none of which
// blocks.

// doorbell is the handle's doorbell descriptor for one side, duplicated and
// registered with the netpoller.
type doorbell struct {
	f  *os.File
	rc syscall.RawConn
}

// longAgo is a deadline in the past: it makes a parked wait return at once.
var longAgo = time.Unix(1, 0)

// armSlots bounds the arming calls (and doorbell set-ups) in flight. Arming makes a membarrier(2)
// system call, tens of microseconds on a VM: a cgo call that long has its P
// handed to another thread, so a thousand goroutines arming at once would
// otherwise create threads by the dozen. A goroutine waiting for a slot is
// parked, not a thread.
var armSlots = make(chan struct{}, max(2, runtime.NumCPU()))

// armBounded runs arm holding one of armSlots.
func armBounded(arm func(*C.int) int64, timeoutMs *C.int) int64 {
	armSlots <- struct{}{}
	defer func() { <-armSlots }()
	return arm(timeoutMs)
}

// bell returns the doorbell of side which (C.MRB_DOORBELL_READ or _WRITE),
// set up on first use.
func (r *RingBuffer) bell(which int) (*doorbell, error) {
	r.bellMu.Lock()
	defer r.bellMu.Unlock()
	if r.bellsClosed {
		return nil, ErrClosed
	}
	if b := r.bells[which]; b != nil {
		return b, nil
	}
	// System calls (socket, bind, dup, epoll_ctl): bounded as arming is.
	armSlots <- struct{}{}
	defer func() { <-armSlots }()
	fd := int(C.mrb_doorbell_fd(r.handle(), C.int(which)))
	runtime.KeepAlive(r)
	if fd < 0 {
		return nil, codeError(int64(fd))
	}
	// Our own descriptor for the same socket (the handle's closes with
	// it); non-blocking already, so os.NewFile registers it with the
	// netpoller.
	dup, err := syscall.Dup(fd)
	if err != nil {
		return nil, err
	}
	syscall.CloseOnExec(dup)
	f := os.NewFile(uintptr(dup), "mrb-doorbell")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	b := &doorbell{f: f, rc: rc}
	r.bells[which] = b
	return b, nil
}

// closeBells wakes every goroutine parked on a doorbell (they return
// ErrClosed) and closes the descriptors; called by Close.
func (r *RingBuffer) closeBells() {
	r.bellMu.Lock()
	defer r.bellMu.Unlock()
	r.bellsClosed = true
	for i, b := range r.bells {
		if b != nil {
			b.f.Close()
			r.bells[i] = nil
		}
	}
}

// waitBell waits until the ring may be ready for side which: arm (which
// drains the doorbell, re-checks the ring and arms it, as mrb_arm_read) runs
// inside the netpoller's read callback, after the poller has forgotten older
// readiness, so a ring sent between arming and parking wakes the park. It
// returns nil when the caller should try again (ready, rung, or the bound
// arm asked for has passed), ctx's error once ctx is done (disarming), or
// the ring's error.
func (r *RingBuffer) waitBell(ctx context.Context, which int, arm func(*C.int) int64) error {
	b, err := r.bell(which)
	if err != nil {
		return err
	}
	if err := b.f.SetReadDeadline(time.Time{}); err != nil {
		return r.bellError(err)
	}
	stop := context.AfterFunc(ctx, func() { b.f.SetReadDeadline(longAgo) })
	defer stop()
	var res int64
	armed := false
	err = b.rc.Read(func(uintptr) bool {
		if armed {
			return true // readable: rung (or spuriously)
		}
		var timeoutMs C.int
		res = armBounded(arm, &timeoutMs)
		if res != 0 {
			return true // 1: ready now; < 0: an error
		}
		armed = true
		deadline := time.Now().Add(time.Duration(timeoutMs) * time.Millisecond)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		b.f.SetReadDeadline(deadline)
		// A cancellation whose AfterFunc ran before the line above.
		if ctx.Err() != nil {
			b.f.SetReadDeadline(longAgo)
		}
		return false // park until readable or the deadline
	})
	switch {
	case err == nil && res < 0:
		return codeError(res)
	case err == nil:
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		if ctx.Err() != nil {
			// Nobody waits any more: producers need not ring.
			C.mrb_disarm(r.handle(), C.int(which))
			runtime.KeepAlive(r)
			return ctx.Err()
		}
		return nil
	default:
		return r.bellError(err)
	}
}

// bellError is ErrClosed for a doorbell closed under a waiter (Close).
func (r *RingBuffer) bellError(err error) error {
	r.bellMu.Lock()
	closed := r.bellsClosed
	r.bellMu.Unlock()
	if closed || errors.Is(err, os.ErrClosed) {
		return ErrClosed
	}
	return err
}

// armRead is the read side's arming, under the read mutex (a consumer call).
func (r *RingBuffer) armRead(timeoutMs *C.int) int64 {
	r.readMu.Lock()
	res := int64(C.mrb_arm_read(r.handle(), timeoutMs))
	r.readMu.Unlock()
	runtime.KeepAlive(r)
	return res
}

// ReadMsgContext returns the next message, waiting for one until ctx is done
// (then it returns ctx.Err()). A write from any process wakes it. Other
// errors as ReadMsg; Close from another goroutine makes it return ErrClosed.
// The goroutine waits in the netpoller: no OS thread is held while it waits.
func (r *RingBuffer) ReadMsgContext(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for {
		msg, err := r.ReadMsg()
		if err != ErrBufferEmpty {
			return msg, err
		}
		if err := r.waitReadable(ctx); err != nil {
			return nil, err
		}
	}
}

// WriteMsgContext writes msg, waiting for free space until ctx is done (then
// it returns ctx.Err()). Reads in any process wake it. Other errors as
// WriteMsg; a message that can never fit gives ErrInvalidSize at once. The
// goroutine waits in the netpoller.
func (r *RingBuffer) WriteMsgContext(ctx context.Context, msg []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for {
		if _, err := r.WriteMsg(msg); err != ErrBufferFull {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		err := r.waitBell(ctx, C.MRB_DOORBELL_WRITE, func(timeoutMs *C.int) int64 {
			res := int64(C.mrb_arm_write(r.handle(), C.size_t(len(msg)), timeoutMs))
			runtime.KeepAlive(r)
			return res
		})
		if err != nil {
			return err
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

// waitReadable waits until a message may be there (nil), ctx is done (its
// error) or the ring fails.
func (r *RingBuffer) waitReadable(ctx context.Context) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return r.waitBell(ctx, C.MRB_DOORBELL_READ, r.armRead)
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
