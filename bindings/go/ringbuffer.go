package ringbuffer

/*
#include <stdlib.h>
#include <string.h>
#include "shim.h"
*/
import "C"

import (
	"io/fs"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// MaxCapacity is the largest ring size the core accepts: 1 TiB
// (MRB_MAX_CAPACITY).
const MaxCapacity int64 = 1 << 40

// RingBuffer is a handle on a ring file. It is safe for concurrent use by
// many goroutines: writes run concurrently (lock-free in the C core); reads
// on one RingBuffer are serialized by a mutex, as the ring has a single
// consumer. Close may be called while other goroutines use the handle; their
// calls then return ErrClosed.
type RingBuffer struct {
	// C memory, freed by the finalizer only once the RingBuffer is
	// unreachable, so calls after Close see a closed handle, never freed
	// memory. Every method ends with runtime.KeepAlive(r) for that reason.
	ring *C.struct_mrb_ring
	// Every call reads ring; the reader's lock and buffers below change on
	// every read. On one cache line they would make each write miss while a
	// reader runs on another core (measured: 175 against 110 ns per message
	// between a producer and a consumer goroutine).
	_ [cacheLinePad - unsafe.Sizeof(uintptr(0))]byte

	readMu  sync.Mutex
	block   []byte     // ReadMsg's current block (see ReadMsg); guarded by readMu
	scratch []byte     // ReadBatch's buffer, grown on demand; guarded by readMu
	lengths []C.size_t // ReadBatch's lengths; guarded by readMu

	// The doorbells blocking calls park on (blocking.go), by side.
	bellMu      sync.Mutex
	bells       [2]*doorbell
	bellsClosed bool
}

// NewRingBuffer creates a ring of size bytes at filename and opens it. The
// size is rounded up to a power of two (at least 256). With remove, an
// existing file is replaced atomically (its unread messages are lost);
// without, an existing ring of the same size is opened as it is, keeping its
// unread messages, and any other existing file is left untouched and
// reported (ErrExists for a ring of another size, ErrBadFormat, ...).
// A new file gets mode 0600; CreateRingBuffer takes a mode.
func NewRingBuffer(filename string, size int, remove bool) (*RingBuffer, error) {
	return CreateRingBuffer(filename, size, CreateOptions{Remove: remove})
}

// CreateOptions are the options of CreateRingBuffer. The zero value is
// NewRingBuffer's behaviour with remove false.
type CreateOptions struct {
	// Remove replaces an existing file atomically; its unread messages are
	// lost.
	Remove bool
	// Exclusive fails with ErrExists if the file exists. Not with Remove.
	Exclusive bool
	// Mode is the new file's permission bits (0o001..0o777), applied
	// exactly, whatever the umask; 0 means 0o600. Other bits (setuid,
	// setgid, sticky, a file type) are refused with ErrInvalidArgument.
	// An existing ring that is opened keeps its mode.
	Mode fs.FileMode
	// FanOut makes a fan-out ring: read by any number of subscribers
	// (Subscribe), each seeing every message, instead of by one consumer;
	// reads on a plain handle of it return ErrMode. Fixed at creation: an
	// existing ring of the other mode gives ErrExists (unless Remove).
	FanOut bool
}

// CreateRingBuffer is NewRingBuffer with options: exclusive creation, the
// file's mode and a fan-out ring.
func CreateRingBuffer(filename string, size int, opts CreateOptions) (*RingBuffer, error) {
	if err := checkPath("create", filename); err != nil {
		return nil, err
	}
	if size < 0 {
		return nil, createSizeError(filename, size)
	}
	if opts.Mode&^fs.ModePerm != 0 {
		return nil, invalidArgument("create", filename,
			"invalid mode "+opts.Mode.String()+" (want permission bits 0..0777; 0 means 0600)")
	}
	if opts.Remove && opts.Exclusive {
		return nil, invalidArgument("create", filename, "Remove and Exclusive exclude each other")
	}
	var copts C.struct_mrb_create_options
	if opts.Remove {
		copts.flags |= C.MRB_CREATE_REMOVE
	}
	if opts.Exclusive {
		copts.flags |= C.MRB_CREATE_EXCLUSIVE
	}
	if opts.FanOut {
		copts.flags |= C.MRB_CREATE_FANOUT
	}
	copts.mode = C.mode_t(opts.Mode)
	r, err := openWith("create", filename, func(ring *C.struct_mrb_ring, path *C.char) C.int {
		return C.mrb_create(ring, path, C.uint64_t(size), &copts)
	})
	if e, ok := err.(*Error); ok && e.Code == int(C.MRB_EINVAL) {
		return nil, createSizeError(filename, size)
	}
	return r, err
}

// invalidArgument is an *Error matching ErrInvalidArgument that says which
// argument is wrong.
func invalidArgument(op, filename, msg string) error {
	e := wrapCode(op, filename, int64(C.MRB_EINVAL))
	e.msg = msg
	return e
}

// createSizeError reports a size outside 1..MaxCapacity as ErrInvalidSize,
// the original package's name for a bad size; it also matches
// ErrInvalidArgument, the core's code for it.
func createSizeError(filename string, size int) error {
	e := wrapCode("create", filename, int64(C.MRB_EINVAL))
	e.Err = ErrInvalidSize
	e.msg = "invalid ring size " + strconv.Itoa(size) + " (want 1.." + strconv.FormatInt(MaxCapacity, 10) + ")"
	return e
}

// OpenRingBuffer opens an existing ring file. The file is validated before
// use: a missing file gives an error matching fs.ErrNotExist, a file that is
// not a ring ErrBadFormat, one of another format version ErrVersion.
func OpenRingBuffer(filename string) (*RingBuffer, error) {
	if err := checkPath("open", filename); err != nil {
		return nil, err
	}
	return openWith("open", filename, func(ring *C.struct_mrb_ring, path *C.char) C.int {
		return C.mrb_open(ring, path, 0)
	})
}

// checkPath rejects a path C cannot represent.
func checkPath(op, filename string) error {
	if strings.IndexByte(filename, 0) >= 0 {
		return wrapCode(op, filename, int64(C.MRB_EINVAL))
	}
	return nil
}

// cacheLinePad is two cache lines: adjacent-line prefetch pairs lines.
const cacheLinePad = 128

func openWith(op, filename string, open func(*C.struct_mrb_ring, *C.char) C.int) (*RingBuffer, error) {
	// Aligned so that the handle's per-role blocks (the producers' call
	// counter, the consumer's state) sit on cache lines of their own.
	ring := (*C.struct_mrb_ring)(C.aligned_alloc(cacheLinePad, C.sizeof_struct_mrb_ring))
	if ring == nil {
		panic("ringbuffer: out of C memory")
	}
	C.memset(unsafe.Pointer(ring), 0, C.sizeof_struct_mrb_ring)
	path := C.CString(filename)
	defer C.free(unsafe.Pointer(path))
	if rc := open(ring, path); rc != 0 {
		C.free(unsafe.Pointer(ring))
		return nil, wrapCode(op, filename, int64(rc))
	}
	r := &RingBuffer{ring: ring}
	runtime.SetFinalizer(r, (*RingBuffer).finalize)
	return r, nil
}

// closedRing is a zero-filled C handle, which the core treats as closed: a
// zero-value RingBuffer uses it, so its methods return ErrClosed.
var closedRing = (*C.struct_mrb_ring)(C.calloc(1, C.sizeof_struct_mrb_ring))

// handle returns the C handle (closedRing for a zero-value RingBuffer).
func (r *RingBuffer) handle() *C.struct_mrb_ring {
	if r.ring == nil {
		return closedRing
	}
	return r.ring
}

// finalize closes a RingBuffer its owner forgot to close and frees its C
// memory. No call can be in progress: they all keep r reachable.
func (r *RingBuffer) finalize() {
	C.mrb_close(r.ring)
	C.free(unsafe.Pointer(r.ring))
}

// Close closes the handle: blocked calls on it return ErrClosed, the
// consumer role is released and the file unmapped. Closing twice returns
// ErrClosed. The file itself stays, with its unread messages.
func (r *RingBuffer) Close() error {
	r.closeBells()
	rc := C.mrb_close(r.handle())
	runtime.KeepAlive(r)
	if rc != 0 {
		return codeError(int64(rc))
	}
	return nil
}

// WriteMsg copies msg into the ring. It returns (true, nil) on success,
// otherwise false and ErrBufferFull (nothing written), ErrInvalidSize (msg
// empty or longer than MaxMessageSize), ErrClosed or ErrCorrupt. It never
// blocks; see WriteMsgContext.
func (r *RingBuffer) WriteMsg(msg []byte) (bool, error) {
	rc := C.gomrb_write(r.handle(), bytePointer(msg), C.size_t(len(msg)))
	runtime.KeepAlive(r)
	if rc != 0 {
		return false, codeError(int64(rc))
	}
	return true, nil
}

// ReadMsg returns the next message in a new slice, or ErrBufferEmpty at once
// when there is none. Other errors: ErrClosed, ErrConsumerBusy (another
// handle is the ring's consumer), ErrCorrupt. See ReadMsgInto for a variant
// that does not allocate, and ReadMsgContext for one that waits.
//
// The slice is the caller's: it stays valid, no later call writes to it,
// and its capacity is its length. A message of 1 KiB or more is copied
// once, straight from the ring into a 64 KiB block shared with the
// messages read after it (one allocation per block, not per message: with
// 4 KiB messages, one per 16); a smaller one is copied into an allocation
// of its own. So a message of 1 KiB or more that the caller keeps keeps its
// whole block (64 KiB) in memory; bytes.Clone the few messages kept for
// long. A message larger than 64 KiB gets a block of its own. ReadMsgInto,
// ReadMsgIntoContext and ReadBatchInto allocate nothing.
func (r *RingBuffer) ReadMsg() ([]byte, error) {
	r.readMu.Lock()
	defer r.readMu.Unlock()
	for {
		free := r.block[len(r.block):cap(r.block)]
		res := int64(C.gomrb_read(r.handle(), bytePointer(free), C.size_t(len(free))))
		runtime.KeepAlive(r)
		msg, retry, err := r.takeFromBlock(res)
		if !retry {
			return msg, err
		}
	}
}

// blockSize and blockMin: see ReadMsg.
const (
	blockSize = 64 << 10
	blockMin  = 1 << 10
)

// takeFromBlock interprets a read helper's result for a read into r.block's
// free tail: it hands out the message (a sub-slice of the block, or a copy
// of a small one), or makes room and asks for a retry (nothing was
// consumed), or converts the error.
func (r *RingBuffer) takeFromBlock(res int64) (msg []byte, retry bool, err error) {
	free := r.block[len(r.block):cap(r.block)]
	if res > int64(len(free)) {
		r.newBlock(int(res))
		return nil, true, nil
	}
	if res < 0 {
		return nil, false, codeError(res)
	}
	n := int(res)
	if n < blockMin {
		// The tail stays free: it is only scratch space here.
		return cloneBytes(free[:n]), false, nil
	}
	// 64-byte steps keep each message's first bytes on a line of its own.
	used := min((n+63)&^63, len(free))
	r.block = r.block[:len(r.block)+used]
	if cap(r.block) > blockSize {
		// A block made for one message larger than blockSize: the handle
		// lets go of it, so that only the caller keeps it.
		r.block = nil
	}
	return free[:n:n], false, nil
}

// newBlock replaces r.block by a new, empty block with room for a message
// of needed bytes: blockSize (or needed, if larger) for a message that will
// be handed out of it, 4 KiB for a small one, which is copied out (so a
// handle that reads only small messages keeps 4 KiB, not 64). The old
// block is left to the messages handed out of it.
func (r *RingBuffer) newBlock(needed int) {
	size := 4 << 10
	if needed >= blockMin {
		size = blockSize
	}
	r.block = make([]byte, 0, max(size, needed))
}

// cloneBytes returns a copy of src in a new slice of exactly its length.
// Written this way (make of a local's length, then copy from a local), the
// compiler makes it one runtime.makeslicecopy: the new slice is allocated
// without being zeroed first. `msg := make([]byte, n); copy(msg, r.scratch)`
// is not matched (the source is a field) and cleared every byte before
// copying them: a third pass over each message, 4 KiB of stores at 4 KiB.
// Not inlined: inlined, the parameter becomes a temporary and the pattern
// is lost again.
//
//go:noinline
func cloneBytes(src []byte) []byte {
	dst := make([]byte, len(src))
	copy(dst, src)
	return dst
}

// ReadMsgInto copies the next message into dst and returns its length. It
// allocates nothing. If dst is too small it returns the size needed and
// ErrBufferTooSmall, and the message stays unread. Other errors as ReadMsg.
func (r *RingBuffer) ReadMsgInto(dst []byte) (int, error) {
	r.readMu.Lock()
	res := int64(C.gomrb_read(r.handle(), bytePointer(dst), C.size_t(len(dst))))
	r.readMu.Unlock()
	runtime.KeepAlive(r)
	return intoResult(res, len(dst))
}

// intoResult interprets a read helper's result for a read into a buffer of
// size capacity: the message length, or the size needed, or an error.
func intoResult(res int64, capacity int) (int, error) {
	if res > int64(capacity) {
		return int(res), ErrBufferTooSmall
	}
	if res >= 0 {
		return int(res), nil
	}
	return 0, codeError(res)
}

// Capacity returns the ring's data capacity in bytes (size rounded up to a
// power of two), or 0 after Close.
func (r *RingBuffer) Capacity() int {
	c := C.mrb_capacity(r.handle())
	runtime.KeepAlive(r)
	return int(c)
}

// MaxMessageSize returns the largest message the ring accepts, or 0 after
// Close.
func (r *RingBuffer) MaxMessageSize() int {
	m := C.mrb_max_message_size(r.handle())
	runtime.KeepAlive(r)
	return int(m)
}

// bytePointer passes a byte slice to C (nil when it is empty). See shim.h
// for why the C helpers take byte pointers.
func bytePointer(b []byte) *C.uchar {
	return (*C.uchar)(unsafe.SliceData(b))
}
