package ringbuffer

/*
#include "mrb.h"
*/
import "C"

import (
	"runtime"
	"time"
)

// The sides of a handle's doorbells, for DoorbellFd and Disarm
// (MRB_DOORBELL_READ and MRB_DOORBELL_WRITE).
const (
	DoorbellRead  = 0
	DoorbellWrite = 1
)

// The sides are C's (an index out of range does not compile).
var (
	_ = [1]int{}[DoorbellRead-C.MRB_DOORBELL_READ]
	_ = [1]int{}[DoorbellWrite-C.MRB_DOORBELL_WRITE]
)

// DoorbellFd returns the handle's doorbell descriptor for side which
// (DoorbellRead: a message may be there; DoorbellWrite: room may be there),
// for a poller of your own (syscall.EpollWait, poll, select, a C event loop
// through cgo). It is non-blocking and close-on-exec, the same on every
// call, and owned by the handle: wait for it only after arming (ArmRead,
// ArmWrite), never read or close it yourself, and remove it from your poller
// before Close (which closes it). The blocking calls (ReadMsgContext, ...)
// need none of this: they park on the same doorbell in the runtime's
// netpoller. Errors: ErrInvalidArgument (another which), ErrClosed, or the
// syscall.Errno of socket(2)/bind(2).
func (r *RingBuffer) DoorbellFd(which int) (int, error) {
	if which != DoorbellRead && which != DoorbellWrite {
		return -1, ErrInvalidArgument
	}
	fd := C.mrb_doorbell_fd(r.handle(), C.int(which))
	runtime.KeepAlive(r)
	if fd < 0 {
		return -1, codeError(int64(fd))
	}
	return int(fd), nil
}

// ArmRead drains the read doorbell, then reports ready (a message is there:
// read it; nothing is armed), or arms the doorbell and returns how long to
// wait for DoorbellFd(DoorbellRead) to become readable at most (1 s
// normally; less while a dead writer's claim may need recovering): then
// read, and arm again once the ring is empty. A message written after the
// check rings the doorbell, one written before it makes ArmRead report
// ready, so this loop misses none (level- or edge-triggered):
//
//	fd, _ := r.DoorbellFd(ringbuffer.DoorbellRead)
//	syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)})
//	for {
//		for msg, err := r.ReadMsg(); err == nil; msg, err = r.ReadMsg() {
//			handle(msg) // drain
//		}
//		ready, wait, err := r.ArmRead() // check
//		if err != nil {
//			return err
//		}
//		if !ready {
//			syscall.EpollWait(ep, events, int(wait.Milliseconds())) // wait
//		}
//	}
//
// A consumer call (it attaches as the consumer, as ReadMsg): errors as
// ReadMsg's. It does not block. Disarm when you stop waiting.
func (r *RingBuffer) ArmRead() (ready bool, wait time.Duration, err error) {
	var timeoutMs C.int
	res := r.armRead(&timeoutMs)
	return armResult(res, timeoutMs)
}

// ArmWrite is the writer's side of ArmRead: it drains the write doorbell,
// then reports ready (a message of size bytes fits now), or arms the
// doorbell and returns how long to wait for DoorbellFd(DoorbellWrite) at
// most. ErrInvalidSize if size can never fit. It does not block.
func (r *RingBuffer) ArmWrite(size int) (ready bool, wait time.Duration, err error) {
	if size <= 0 {
		return false, 0, ErrInvalidSize
	}
	var timeoutMs C.int
	res := int64(C.mrb_arm_write(r.handle(), C.size_t(size), &timeoutMs))
	runtime.KeepAlive(r)
	return armResult(res, timeoutMs)
}

func armResult(res int64, timeoutMs C.int) (bool, time.Duration, error) {
	switch {
	case res < 0:
		return false, 0, codeError(res)
	case res == 1:
		return true, 0, nil
	default:
		return false, time.Duration(timeoutMs) * time.Millisecond, nil
	}
}

// Disarm withdraws the handle's armed doorbell of side which (a wait given
// up), so that writers (or the reader) no longer ring it; nothing happens if
// none is armed. ErrInvalidArgument, ErrClosed.
func (r *RingBuffer) Disarm(which int) error {
	if which != DoorbellRead && which != DoorbellWrite {
		return ErrInvalidArgument
	}
	rc := C.mrb_disarm(r.handle(), C.int(which))
	runtime.KeepAlive(r)
	if rc < 0 {
		return codeError(int64(rc))
	}
	return nil
}
