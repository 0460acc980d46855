package ringbuffer

/*
#include "shim.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"
)

// C's size_t and Go's int have the same size on every platform Go supports;
// these fail to compile otherwise, so lengths can be passed to C in place.
var (
	_ [unsafe.Sizeof(C.size_t(0)) - unsafe.Sizeof(int(0))]byte
	_ [unsafe.Sizeof(int(0)) - unsafe.Sizeof(C.size_t(0))]byte
)

// packedBatch holds a WriteBatch's messages back to back: C must not be
// handed Go memory that holds Go pointers, so a [][]byte cannot be passed
// as it is.
type packedBatch struct {
	data    []byte
	lengths []int
}

var packedBatches = sync.Pool{New: func() any { return new(packedBatch) }}

// WriteBatch writes msgs in order with one call into C (a second one finds
// out why, when it stops early), stopping at the first that does not fit.
// It returns how many were written; if fewer than len(msgs), err says why
// the next one was not (ErrBufferFull, ErrInvalidSize, ...). Safe to call concurrently with other writers; each
// message is written atomically, but messages of concurrent batches may
// interleave.
func (r *RingBuffer) WriteBatch(msgs [][]byte) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	b := packedBatches.Get().(*packedBatch)
	defer packedBatches.Put(b)
	b.data = b.data[:0]
	b.lengths = b.lengths[:0]
	for _, m := range msgs {
		b.data = append(b.data, m...)
		b.lengths = append(b.lengths, len(m))
	}
	written := 0
	data := b.data
	for written < len(msgs) {
		res := int64(C.gomrb_write_packed(r.handle(), bytePointer(data),
			(*C.size_t)(unsafe.Pointer(&b.lengths[written])), C.size_t(len(msgs)-written)))
		runtime.KeepAlive(r)
		if res < 0 {
			return written, codeError(res)
		}
		// A short count is retried from the first unwritten message: either
		// space was freed meanwhile, or that retry reports the reason.
		for _, n := range b.lengths[written : written+int(res)] {
			data = data[n:]
		}
		written += int(res)
	}
	return written, nil
}

// ReadBatch returns up to maxCount messages (at least one) read with one call
// into C. It returns ErrBufferEmpty at once when there is none. The messages
// share one new allocation.
func (r *RingBuffer) ReadBatch(maxCount int) ([][]byte, error) {
	if maxCount <= 0 {
		return nil, ErrInvalidArgument
	}
	r.readMu.Lock()
	defer r.readMu.Unlock()
	if len(r.scratch) < 64<<10 {
		r.scratch = make([]byte, 64<<10)
	}
	if len(r.lengths) < maxCount {
		r.lengths = make([]C.size_t, maxCount)
	}
	for {
		res := int64(C.gomrb_read_many(r.handle(), bytePointer(r.scratch),
			C.size_t(len(r.scratch)), unsafe.SliceData(r.lengths), C.size_t(maxCount)))
		runtime.KeepAlive(r)
		if res == int64(C.MRB_EBUFFER_TOO_SMALL) {
			r.scratch = make([]byte, r.lengths[0])
			continue
		}
		if res < 0 {
			return nil, codeError(res)
		}
		total := 0
		for _, n := range r.lengths[:res] {
			total += int(n)
		}
		all := cloneBytes(r.scratch[:total])
		msgs := make([][]byte, res)
		for i, n := range r.lengths[:res] {
			msgs[i] = all[:n:n]
			all = all[n:]
		}
		return msgs, nil
	}
}

// ReadBatchInto copies up to len(lengths) messages back to back into buf
// with one call into C, stores their lengths and returns how many it read.
// It allocates nothing. It returns ErrBufferEmpty when there is no message,
// and ErrBufferTooSmall when the first alone does not fit buf, with
// lengths[0] set to its size (nothing is consumed).
func (r *RingBuffer) ReadBatchInto(buf []byte, lengths []int) (int, error) {
	if len(lengths) == 0 {
		return 0, ErrInvalidArgument
	}
	r.readMu.Lock()
	res := int64(C.gomrb_read_many(r.handle(), bytePointer(buf), C.size_t(len(buf)),
		(*C.size_t)(unsafe.Pointer(unsafe.SliceData(lengths))), C.size_t(len(lengths))))
	r.readMu.Unlock()
	runtime.KeepAlive(r)
	if res < 0 {
		return 0, codeError(res)
	}
	return int(res), nil
}
