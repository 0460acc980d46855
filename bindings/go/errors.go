package ringbuffer

/*
#include "mrb.h"
*/
import "C"

import (
	"errors"
	"fmt"
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

// The sentinels carry the core's code and message as literals, so that go
// doc shows them; literalMismatches (run by the tests) checks them against
// mrb.h and mrb_strerror.

// The original package's errors.
var (
	// ErrBufferFull: not enough free space; nothing was written.
	ErrBufferFull = &Error{Code: -1001, msg: "ring buffer full"}
	// ErrInvalidSize: an empty message, one above MaxMessageSize, or a ring
	// size that is not positive or is above MaxCapacity.
	ErrInvalidSize = &Error{Code: -1003, msg: "invalid message size (empty or larger than the maximum)"}
	// ErrBufferEmpty: no message to read.
	ErrBufferEmpty = &Error{Code: -1002, msg: "ring buffer empty"}
	// ErrClosed: the RingBuffer was closed, or is a zero value that was
	// never opened.
	ErrClosed = &Error{Code: -1004, msg: "ring buffer handle is closed"}
)

// The core's other errors.
var (
	// ErrBadFormat: not a ring file, or its header is invalid.
	ErrBadFormat = &Error{Code: -1005, msg: "not a valid ring buffer file (bad magic, header, or size)"}
	// ErrVersion: a ring file of an unsupported format version.
	ErrVersion = &Error{Code: -1006, msg: "unsupported ring buffer format version"}
	// ErrConsumerBusy: another live handle (in any process) is the consumer.
	ErrConsumerBusy = &Error{Code: -1007, msg: "another consumer is attached to this ring buffer"}
	// ErrCorrupt: the shared positions or a record are invalid.
	ErrCorrupt = &Error{Code: -1008, msg: "ring buffer data is corrupt (invalid position or record)"}
	// ErrInvalidArgument: an invalid argument, e.g. a path containing NUL
	// or a mode with bits above 0o777.
	ErrInvalidArgument = &Error{Code: -1009, msg: "invalid argument"}
	// ErrTimeout: a blocking wait's timeout expired. The context variants
	// return the context's error instead.
	ErrTimeout = &Error{Code: -1010, msg: "timed out"}
	// ErrBufferTooSmall: the destination cannot hold the next message, which
	// was not consumed.
	ErrBufferTooSmall = &Error{Code: -1011, msg: "destination buffer too small for the next message"}
	// ErrInterrupted: a blocking call was interrupted by a signal. The
	// context variants retry instead of returning it.
	ErrInterrupted = &Error{Code: -1012, msg: "interrupted by a signal"}
	// ErrExists: the file exists and is a ring of another size (or exists
	// at all, with CreateOptions.Exclusive).
	ErrExists = &Error{Code: -1013, msg: "file exists (exclusive create, or a ring of another size or read mode)"}
	// ErrStale: a reservation or view no longer matches the ring (the C
	// API's zero-copy calls; this package does not expose them).
	ErrStale = &Error{Code: -1014, msg: "reservation or view is no longer valid"}
	// ErrForked: the ring was opened by another process. Go has no fork,
	// but a C or Python process sharing a handle may report it.
	ErrForked = &Error{Code: -1015, msg: "ring buffer handle was opened by another process (inherited across fork); open the ring again in this process"}
	// ErrNoSlot: every producer slot of the ring (128) is owned by a live
	// writing handle; close some, or write through fewer handles.
	ErrNoSlot = &Error{Code: -1016, msg: "no free producer slot: every slot of this ring is owned by a live writing handle"}
	// ErrForeign: create found a ring file owned by another user, or
	// granting more permissions than CreateOptions.Mode, and did not adopt it.
	ErrForeign = &Error{Code: -1017, msg: "existing ring file is owned by another user or grants more permissions than requested; refusing to adopt it"}
	// ErrNoSubscriberSlot: every subscriber entry of the ring
	// (MaxSubscribers) is taken; close or Unsubscribe some.
	ErrNoSubscriberSlot = &Error{Code: -1019, msg: "every subscriber entry of the ring is taken"}
	// ErrLapped: messages were lost to this subscriber: it was evicted
	// (SubscribeOptions.EvictAfter) and producers overwrote messages it had not
	// read. Returned once by the next read; SubscriberInfo.LostBytes says
	// how much, and the following reads continue with the oldest message
	// left.
	ErrLapped = &Error{Code: -1020, msg: "the subscriber was lapped or evicted: messages were lost"}
	// ErrMode: the call does not fit the ring's read mode, e.g. a consumer
	// read on a fan-out ring (read through a Subscriber), or a durable
	// subscriber of a queue ring (durable ones need CreateOptions.FanOut).
	ErrMode = &Error{Code: -1021, msg: "not available in this ring's read mode (queue or fan-out)"}
	// ErrNameBusy: a live subscriber handle already uses this name.
	ErrNameBusy = &Error{Code: -1022, msg: "a live subscriber (or worker of the group) uses this name"}
	// ErrNoWorkerSlot: every worker slot (MaxWorkers per ring), or every
	// worker group (MaxWorkerGroups), of the ring is taken.
	ErrNoWorkerSlot = &Error{Code: -1023, msg: "every worker slot (or group) of the ring is taken"}
	// ErrIO matches (with errors.Is) every operating-system failure; the
	// *Error then wraps the syscall.Errno.
	ErrIO = errors.New("ringbuffer: operating-system error")
)

// coreCodes names each sentinel's code in mrb.h.
var coreCodes = map[*Error]C.int{
	ErrBufferFull: C.MRB_EFULL, ErrInvalidSize: C.MRB_EMSGSIZE, ErrBufferEmpty: C.MRB_EEMPTY,
	ErrClosed: C.MRB_ECLOSED, ErrBadFormat: C.MRB_EFORMAT, ErrVersion: C.MRB_EVERSION,
	ErrConsumerBusy: C.MRB_ECONSUMER_BUSY, ErrCorrupt: C.MRB_ECORRUPT,
	ErrInvalidArgument: C.MRB_EINVAL, ErrTimeout: C.MRB_ETIMEDOUT,
	ErrBufferTooSmall: C.MRB_EBUFFER_TOO_SMALL, ErrInterrupted: C.MRB_EINTR,
	ErrExists: C.MRB_EEXIST, ErrStale: C.MRB_ESTALE, ErrForked: C.MRB_EFORKED,
	ErrNoSlot: C.MRB_ENOSLOT, ErrForeign: C.MRB_EFOREIGN,
	ErrNoSubscriberSlot: C.MRB_ENOSUB, ErrLapped: C.MRB_ELAPPED, ErrMode: C.MRB_EMODE,
	ErrNameBusy: C.MRB_ENAMEBUSY, ErrNoWorkerSlot: C.MRB_ENOWORKER,
}

// literalMismatches lists every sentinel whose literal code or message, and
// every constant whose literal value, differs from the core's.
func literalMismatches() []string {
	var bad []string
	if MaxCapacity != int64(C.MRB_MAX_CAPACITY) {
		bad = append(bad, fmt.Sprintf("MaxCapacity %d: core has %d", MaxCapacity, int64(C.MRB_MAX_CAPACITY)))
	}
	if MaxSubscribers != int(C.MRB_MAX_SUBSCRIBERS) || MaxSubscriberName != int(C.MRB_SUBSCRIBER_NAME_MAX) {
		bad = append(bad, fmt.Sprintf("MaxSubscribers %d, MaxSubscriberName %d: core has %d, %d",
			MaxSubscribers, MaxSubscriberName, int(C.MRB_MAX_SUBSCRIBERS), int(C.MRB_SUBSCRIBER_NAME_MAX)))
	}
	for s, code := range coreCodes {
		if s.Code != int(code) || s.msg != strerror(int64(code)) {
			bad = append(bad, fmt.Sprintf("%q (code %d): core has code %d, %q",
				s.msg, s.Code, int(code), strerror(int64(code))))
		}
	}
	return bad
}

// strerror is the core's message for code.
func strerror(code int64) string {
	return C.GoString(C.mrb_strerror(C.int(code)))
}

var sentinels = map[int]*Error{}

func init() {
	for _, s := range []*Error{
		ErrBufferFull, ErrInvalidSize, ErrBufferEmpty, ErrClosed,
		ErrBadFormat, ErrVersion, ErrConsumerBusy, ErrCorrupt,
		ErrInvalidArgument, ErrTimeout, ErrBufferTooSmall, ErrInterrupted,
		ErrExists, ErrStale, ErrForked, ErrNoSlot, ErrForeign,
		ErrNoSubscriberSlot, ErrLapped, ErrMode, ErrNameBusy, ErrNoWorkerSlot,
	} {
		sentinels[s.Code] = s
	}
}

// codeError returns the error for a negative core code from a call on an
// open ring: the sentinel itself, so that == comparisons work.
func codeError(code int64) error {
	// The two a polling loop meets on every miss, without a map lookup.
	switch code {
	case C.MRB_EEMPTY:
		return ErrBufferEmpty
	case C.MRB_EFULL:
		return ErrBufferFull
	}
	if s, ok := sentinels[int(code)]; ok {
		return s
	}
	return wrapCode("", "", code)
}

// wrapCode returns an *Error with the operation and path for code.
func wrapCode(op, path string, code int64) *Error {
	e := &Error{Op: op, Path: path, Code: int(code), msg: strerror(code)}
	if s, ok := sentinels[int(code)]; ok {
		e.Err = s
	} else if code < 0 && code > minCoreCode {
		errno := syscall.Errno(-code)
		e.Err = errno
		e.msg = errno.Error() // Go's wording, as in *fs.PathError
	}
	return e
}
