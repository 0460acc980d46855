package ringbuffer

/*
#include "mrb.h"
*/
import "C"

import (
	"errors"
	"syscall"
)

// Error is a failure reported by the C core.
//
// The exported Err* values are *Error sentinels (Op empty). Calls on an open
// ring return the sentinel itself, so err == ErrBufferFull works as with the
// original package; NewRingBuffer and OpenRingBuffer return an *Error that
// adds the operation and path and wraps the sentinel, or a syscall.Errno for
// an operating-system failure, so use errors.Is for those:
//
//	errors.Is(err, ringbuffer.ErrBadFormat)
//	errors.Is(err, fs.ErrNotExist)       // the file is missing
//	errors.Is(err, ringbuffer.ErrIO)     // any operating-system failure
type Error struct {
	Op   string // "create" or "open"; empty for the sentinels
	Path string // the ring file, when known
	Code int    // the core's code: a negative enum mrb_error value, or -errno
	Err  error  // the sentinel or syscall.Errno this wraps; nil for sentinels
	msg  string // mrb_strerror(Code)
}

func (e *Error) Error() string {
	if e.Op == "" {
		return "ringbuffer: " + e.msg
	}
	if e.Path == "" {
		return "ringbuffer: " + e.Op + ": " + e.msg
	}
	return "ringbuffer: " + e.Op + " " + e.Path + ": " + e.msg
}

// Unwrap returns the sentinel or syscall.Errno the error wraps.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel for e's code, or ErrIO for an
// operating-system failure.
func (e *Error) Is(target error) bool {
	if target == ErrIO {
		return e.Code < 0 && e.Code > minCoreCode
	}
	t, ok := target.(*Error)
	return ok && t.Op == "" && t.Code == e.Code
}

// Every enum mrb_error value lies below this; -errno values lie above.
const minCoreCode = -1000

func newSentinel(code C.int) *Error {
	return &Error{Code: int(code), msg: C.GoString(C.mrb_strerror(code))}
}

// The original package's errors.
var (
	// ErrBufferFull: not enough free space; nothing was written.
	ErrBufferFull = newSentinel(C.MRB_EFULL)
	// ErrInvalidSize: an empty message, one above MaxMessageSize, or a ring
	// size that is not positive or is above MaxCapacity.
	ErrInvalidSize = newSentinel(C.MRB_EMSGSIZE)
	// ErrBufferEmpty: no message to read.
	ErrBufferEmpty = newSentinel(C.MRB_EEMPTY)
	// ErrClosed: the RingBuffer was closed.
	ErrClosed = newSentinel(C.MRB_ECLOSED)
)

// The core's other errors.
var (
	// ErrBadFormat: not a ring file, or its header is invalid.
	ErrBadFormat = newSentinel(C.MRB_EFORMAT)
	// ErrVersion: a ring file of an unsupported format version.
	ErrVersion = newSentinel(C.MRB_EVERSION)
	// ErrConsumerBusy: another live handle (in any process) is the consumer.
	ErrConsumerBusy = newSentinel(C.MRB_ECONSUMER_BUSY)
	// ErrCorrupt: the shared positions or a record are invalid.
	ErrCorrupt = newSentinel(C.MRB_ECORRUPT)
	// ErrInvalidArgument: an invalid argument, e.g. a path containing NUL.
	ErrInvalidArgument = newSentinel(C.MRB_EINVAL)
	// ErrTimeout: a blocking wait's timeout expired. The context variants
	// return the context's error instead.
	ErrTimeout = newSentinel(C.MRB_ETIMEDOUT)
	// ErrBufferTooSmall: the destination cannot hold the next message, which
	// was not consumed.
	ErrBufferTooSmall = newSentinel(C.MRB_EBUFFER_TOO_SMALL)
	// ErrInterrupted: a blocking call was interrupted by a signal. The
	// context variants retry instead of returning it.
	ErrInterrupted = newSentinel(C.MRB_EINTR)
	// ErrExists: the file exists and is a ring of another size.
	ErrExists = newSentinel(C.MRB_EEXIST)
	// ErrStale: a reservation or view no longer matches the ring (the C
	// API's zero-copy calls; this package does not expose them).
	ErrStale = newSentinel(C.MRB_ESTALE)
	// ErrIO matches (with errors.Is) every operating-system failure; the
	// *Error then wraps the syscall.Errno.
	ErrIO = errors.New("ringbuffer: operating-system error")
)

var sentinels = map[int]*Error{}

func init() {
	for _, s := range []*Error{
		ErrBufferFull, ErrInvalidSize, ErrBufferEmpty, ErrClosed,
		ErrBadFormat, ErrVersion, ErrConsumerBusy, ErrCorrupt,
		ErrInvalidArgument, ErrTimeout, ErrBufferTooSmall, ErrInterrupted,
		ErrExists, ErrStale,
	} {
		sentinels[s.Code] = s
	}
}

// codeError returns the error for a negative core code from a call on an
// open ring: the sentinel itself, so that == comparisons work.
func codeError(code int64) error {
	if s, ok := sentinels[int(code)]; ok {
		return s
	}
	return wrapCode("", "", code)
}

// wrapCode returns an *Error with the operation and path for code.
func wrapCode(op, path string, code int64) *Error {
	e := &Error{Op: op, Path: path, Code: int(code), msg: C.GoString(C.mrb_strerror(C.int(code)))}
	if s, ok := sentinels[int(code)]; ok {
		e.Err = s
	} else if code < 0 && code > minCoreCode {
		errno := syscall.Errno(-code)
		e.Err = errno
		e.msg = errno.Error() // Go's wording, as in *fs.PathError
	}
	return e
}
