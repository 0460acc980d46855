package ringbuffer

/*
#include <stdlib.h>
#include "mrb.h"
*/
import "C"

import (
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// MaxWorkers is how many worker slots a ring has (MRB_MAX_WORKERS), and
// MaxWorkerGroups how many worker groups (MRB_MAX_GROUPS); JoinWorker
// beyond them gives ErrNoWorkerSlot.
const (
	MaxWorkers      = 48
	MaxWorkerGroups = 4
	MaxGroupName    = 31
)

// WorkerOptions are a worker group's policy, chosen by the worker that
// creates the group. JoinWorker with nil options joins an existing group
// with the group's own (or creates an at-least-once group without a hold
// timeout); with options that differ from the group's it gives
// ErrInvalidArgument.
type WorkerOptions struct {
	// AtMostOnce: what a dead or hung worker held is dropped and counted
	// (GroupInfo.Dropped) instead of redelivered to another worker
	// (at-least-once, the default: such a message may be processed twice).
	AtMostOnce bool
	// HoldTimeout > 0: a live worker that holds messages longer is treated
	// as hung: its messages are taken from it, and its late release returns
	// ErrStale once (GroupInfo.StaleReleases).
	HoldTimeout time.Duration
}

// A Worker is one of a group of competing consumers of a fan-out ring
// (CreateOptions.FanOut): each message goes to one worker of the group, in
// the order producers committed them (workers finish them in any order).
// It reads with the RingBuffer read calls: ReadMsg, ReadMsgInto,
// ReadMsgContext, ReadMsgIntoContext, ReadBatch, ReadBatchInto,
// ReadBatchContext (a batch is a run of messages taken at once). Each read
// call first releases what the previous one returned (those messages are
// done); Ack releases without taking more, and Close releases too. A read
// that finds its previous messages taken from it (after the group's hold
// timeout) returns ErrStale once. Other read calls (Peek, Hold,
// ReadBatchAt, ...) give ErrInvalidArgument. The Context reads park in the
// runtime's netpoller on the worker's own doorbell, as a RingBuffer's do (no
// OS thread per blocked worker; cancelling ctx returns at once and takes
// nothing); a parked worker wakes every 100 ms to look for a dead or hung
// worker's messages to rescue. DoorbellFd, ArmRead and Disarm work on a
// worker too. Get one from JoinWorker.
type Worker struct {
	*RingBuffer
}

// JoinWorker opens the fan-out ring at path as a worker of group (1 to
// MaxGroupName bytes), creating the group with opts if it does not exist.
// Errors (wrapped with the operation "worker" and the path): those of
// OpenRingBuffer, ErrMode (a queue ring), ErrNoWorkerSlot,
// ErrInvalidArgument.
func JoinWorker(path, group string, opts *WorkerOptions) (*Worker, error) {
	if err := checkPath("worker", path); err != nil {
		return nil, err
	}
	if group == "" || strings.IndexByte(group, 0) >= 0 || len(group) > MaxGroupName {
		return nil, invalidArgument("worker", path, "invalid group name "+strconv.Quote(group)+
			" (want 1.."+strconv.Itoa(MaxGroupName)+" bytes, no NUL)")
	}
	var copts *C.struct_mrb_worker_options
	if opts != nil {
		if opts.HoldTimeout < 0 {
			return nil, invalidArgument("worker", path, "negative HoldTimeout "+opts.HoldTimeout.String())
		}
		copts = (*C.struct_mrb_worker_options)(C.calloc(1, C.sizeof_struct_mrb_worker_options))
		defer C.free(unsafe.Pointer(copts))
		if opts.AtMostOnce {
			copts.policy = C.MRB_AT_MOST_ONCE
		}
		copts.hold_timeout_ns = C.int64_t(opts.HoldTimeout.Nanoseconds())
	}
	cgroup := C.CString(group)
	defer C.free(unsafe.Pointer(cgroup))
	r, err := openWith("worker", path, func(ring *C.struct_mrb_ring, cpath *C.char) C.int {
		return C.mrb_worker_join(ring, cpath, cgroup, copts)
	})
	if err != nil {
		return nil, err
	}
	return &Worker{RingBuffer: r}, nil
}

// RemoveWorkerGroup removes group of the fan-out ring at path for good, so
// that the messages it has not finished stop holding producers back and
// its place is free for a new group. Only a group without live workers:
// what its dead workers held is let go. ErrNameBusy while a live worker is
// in it (or joining or leaving it: try again); an error matching
// fs.ErrNotExist if the ring has no such group (or there is no ring file);
// ErrMode on a queue ring. Errors are wrapped with the operation
// "remove group" and the path.
func RemoveWorkerGroup(path, group string) error {
	if err := checkPath("remove group", path); err != nil {
		return err
	}
	if group == "" || strings.IndexByte(group, 0) >= 0 || len(group) > MaxGroupName {
		return invalidArgument("remove group", path, "invalid group name "+strconv.Quote(group)+
			" (want 1.."+strconv.Itoa(MaxGroupName)+" bytes, no NUL)")
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	cgroup := C.CString(group)
	defer C.free(unsafe.Pointer(cgroup))
	if rc := C.mrb_worker_group_remove(cpath, cgroup); rc != 0 {
		return wrapCode("remove group", path, int64(rc))
	}
	return nil
}

// Ack releases the messages the last read call returned (they are done)
// without taking more. ErrStale if they had been taken from this worker
// after the group's hold timeout.
func (w *Worker) Ack() error {
	if w == nil || w.RingBuffer == nil {
		return ErrClosed
	}
	rc := C.mrb_worker_ack(w.handle())
	runtime.KeepAlive(w.RingBuffer)
	if rc < 0 {
		return codeError(int64(rc))
	}
	return nil
}

// GroupInfo is a snapshot of a worker group.
type GroupInfo struct {
	Name          string
	AtMostOnce    bool
	Index         int
	HoldTimeout   time.Duration
	ClaimPosition uint64 // the next message no worker has taken
	LagBytes      uint64
	Workers       int
	WorkersAlive  int
	MessagesDone  uint64
	BytesDone     uint64
	Redelivered   uint64 // handed again after their worker died or hung
	Dropped       uint64 // given up (at-most-once)
	StaleReleases uint64 // late releases refused
}

// WorkerGroups lists the ring's worker groups (any handle).
func (r *RingBuffer) WorkerGroups() ([]GroupInfo, error) {
	var raw [MaxWorkerGroups]C.struct_mrb_group_info
	n := C.mrb_worker_groups(r.handle(), &raw[0], C.size_t(len(raw)))
	runtime.KeepAlive(r)
	if n < 0 {
		return nil, codeError(int64(n))
	}
	if n > C.int64_t(len(raw)) {
		n = C.int64_t(len(raw))
	}
	out := make([]GroupInfo, 0, int(n))
	for i := 0; i < int(n); i++ {
		g := &raw[i]
		out = append(out, GroupInfo{
			Name:          C.GoString(&g.name[0]),
			AtMostOnce:    g.policy == C.MRB_AT_MOST_ONCE,
			Index:         int(g.index),
			HoldTimeout:   time.Duration(g.hold_timeout_ns),
			ClaimPosition: uint64(g.claim_position),
			LagBytes:      uint64(g.lag_bytes),
			Workers:       int(g.workers),
			WorkersAlive:  int(g.workers_alive),
			MessagesDone:  uint64(g.messages_done),
			BytesDone:     uint64(g.bytes_done),
			Redelivered:   uint64(g.redelivered),
			Dropped:       uint64(g.dropped),
			StaleReleases: uint64(g.stale_releases),
		})
	}
	return out, nil
}
