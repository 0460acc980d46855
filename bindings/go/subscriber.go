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

// MaxSubscribers is how many subscribers a ring's reader table holds
// (MRB_MAX_SUBSCRIBERS); Subscribe beyond it gives ErrNoSubscriberSlot.
const MaxSubscribers = 64

// MaxSubscriberName is the longest subscriber name, in bytes
// (MRB_SUBSCRIBER_NAME_MAX).
const MaxSubscriberName = 31

// SubscribeOptions are the options of Subscribe. The zero value is an
// unnamed durable subscriber that joins at the live end.
type SubscribeOptions struct {
	// Name makes the subscriber named (1..MaxSubscriberName bytes, no NUL):
	// when its handle is gone (Close, or its process died), the next
	// Subscribe with the name resumes right after the last message it
	// released. Unnamed ("") subscribers are removed when their handle
	// goes. A name in use by a live handle gives ErrNameBusy.
	Name string
	// Lossy makes a tap that never holds producers back: when producers
	// lap it, it skips to the oldest consistent point and counts the loss
	// (SubscriberInfo.LostBytes, LostEvents) without an error. Every
	// message it returns was checked after copying: never torn. Works on
	// queue rings too. Not with EvictAfter, Hold or ReleaseThrough.
	Lossy bool
	// EvictAfter > 0 makes a durable subscriber evictable: producers
	// evict it once it has held them back this long (a hung reader), or at
	// once when its process is found dead. Its next read then returns
	// ErrLapped once if messages were overwritten meanwhile, and reading
	// continues with the oldest message left. With 0 (the default) a
	// subscriber's unread messages wait for it, whatever happens to it.
	// Not with Lossy, Hold or ReleaseThrough.
	EvictAfter time.Duration
	// FromOldest starts a new subscriber at the oldest message still in
	// the ring instead of at the live end. It does not change where an
	// existing named subscriber resumes.
	FromOldest bool
}

// A Subscriber is one reader of a ring's stream, with a handle of its own
// (it embeds one). Durable subscribers (on fan-out rings, CreateOptions
// FanOut) each see every message from where they joined, in order, and
// producers never overwrite what a durable subscriber has not read; lossy
// ones (SubscribeOptions.Lossy, on any ring) never slow producers.
//
// It reads with the RingBuffer read calls, which on it read its own
// position: ReadMsg, ReadMsgInto, ReadMsgContext, ReadMsgIntoContext,
// ReadBatch, ReadBatchInto, ReadBatchContext, ReadBatchAt,
// ReadBatchAtContext; a durable one that is not evictable can also Hold
// and ReleaseThrough (lossy and evictable ones: ErrInvalidArgument). It
// can write like any handle. Close leaves the ring's subscriber table (a
// named subscriber keeps its place for the next Subscribe with its name).
// Like a RingBuffer it is safe for concurrent use by many goroutines. Get
// one from Subscribe: a zero Subscriber has no handle (its Info returns
// ErrClosed, its embedded methods panic).
type Subscriber struct {
	*RingBuffer
}

// Subscribe opens the ring at path as a new subscriber. A durable
// subscriber (the default) needs a fan-out ring: on a queue ring it gets
// ErrMode. Other errors (wrapped with the operation "subscribe" and the
// path, as OpenRingBuffer's): those of OpenRingBuffer, ErrNameBusy,
// ErrNoSubscriberSlot, ErrInvalidArgument (a bad name, Lossy with
// EvictAfter, a negative EvictAfter).
func Subscribe(path string, opts SubscribeOptions) (*Subscriber, error) {
	if err := checkPath("subscribe", path); err != nil {
		return nil, err
	}
	if err := checkName("subscribe", path, opts.Name); err != nil {
		return nil, err
	}
	var copts C.struct_mrb_subscribe_options
	if opts.Lossy {
		copts.flags |= C.MRB_SUBSCRIBE_LOSSY
	}
	if opts.EvictAfter < 0 {
		return nil, invalidArgument("subscribe", path, "negative EvictAfter "+opts.EvictAfter.String())
	}
	if opts.EvictAfter > 0 {
		copts.flags |= C.MRB_SUBSCRIBE_EVICT
	}
	if opts.FromOldest {
		copts.flags |= C.MRB_SUBSCRIBE_FROM_OLDEST
	}
	copts.evict_after_ns = C.int64_t(opts.EvictAfter.Nanoseconds())
	if opts.Name != "" {
		copts.name = C.CString(opts.Name)
		defer C.free(unsafe.Pointer(copts.name))
	}
	r, err := openWith("subscribe", path, func(ring *C.struct_mrb_ring, cpath *C.char) C.int {
		return C.mrb_subscribe(ring, cpath, &copts)
	})
	if err != nil {
		return nil, err
	}
	return &Subscriber{RingBuffer: r}, nil
}

// checkName rejects a subscriber name C cannot take: a NUL in it, or too
// long.
func checkName(op, path, name string) error {
	if strings.IndexByte(name, 0) >= 0 || len(name) > MaxSubscriberName {
		return invalidArgument(op, path, "invalid subscriber name "+strconv.Quote(name)+
			" (want 1.."+strconv.Itoa(MaxSubscriberName)+" bytes, no NUL)")
	}
	return nil
}

// Unsubscribe removes the named subscriber of the ring at path for good, so
// that its unread messages stop holding producers back. ErrNameBusy while a
// live handle uses the name; an error matching fs.ErrNotExist if the ring
// has no such subscriber (or there is no ring file). Errors are wrapped
// with the operation "unsubscribe" and the path.
func Unsubscribe(path, name string) error {
	if err := checkPath("unsubscribe", path); err != nil {
		return err
	}
	if name == "" {
		return invalidArgument("unsubscribe", path, "empty subscriber name")
	}
	if err := checkName("unsubscribe", path, name); err != nil {
		return err
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	if rc := C.mrb_unsubscribe(cpath, cname); rc != 0 {
		return wrapCode("unsubscribe", path, int64(rc))
	}
	return nil
}

// SubscriberState is where a subscriber is in its life.
type SubscriberState int

// The subscriber states (enum mrb_subscriber_state).
const (
	SubscriberJoining  SubscriberState = 1 // being set up by Subscribe
	SubscriberActive   SubscriberState = 2 // its handle is open (or not yet seen gone)
	SubscriberDetached SubscriberState = 3 // named, no handle: its messages wait for it
	SubscriberEvicted  SubscriberState = 4 // no longer holds producers back
)

func (s SubscriberState) String() string {
	switch s {
	case SubscriberJoining:
		return "joining"
	case SubscriberActive:
		return "active"
	case SubscriberDetached:
		return "detached"
	case SubscriberEvicted:
		return "evicted"
	}
	return "SubscriberState(" + strconv.Itoa(int(s)) + ")"
}

// SubscriberInfo is a snapshot of one subscriber's entry in the ring.
type SubscriberInfo struct {
	Name       string // "" when unnamed
	Lossy      bool   // its policy, from the options it joined with
	Evict      bool
	EvictAfter time.Duration
	State      SubscriberState
	PID        int    // 0 when no handle owns it
	Alive      bool   // that process lives
	Index      int    // its entry in the reader table
	Position   uint64 // ring position of the next message it reads
	// LagBytes and LagMessages are what it has still to read: producer
	// position - Position, and the committed messages in between.
	LagBytes     uint64
	LagMessages  uint64
	MessagesRead uint64
	BytesRead    uint64 // payload bytes
	LostBytes    uint64 // ring bytes overwritten before it read them
	LostEvents   uint64 // times it was lapped, or evicted with a loss
	Evictions    uint64
}

func subscriberInfoOf(in *C.struct_mrb_subscriber_info) SubscriberInfo {
	return SubscriberInfo{
		Name:         C.GoString(&in.name[0]),
		Lossy:        in.flags&C.MRB_SUBSCRIBE_LOSSY != 0,
		Evict:        in.flags&C.MRB_SUBSCRIBE_EVICT != 0,
		EvictAfter:   time.Duration(in.evict_after_ns),
		State:        SubscriberState(in.state),
		PID:          int(in.pid),
		Alive:        in.alive != 0,
		Index:        int(in.index),
		Position:     uint64(in.position),
		LagBytes:     uint64(in.lag_bytes),
		LagMessages:  uint64(in.lag_messages),
		MessagesRead: uint64(in.messages_read),
		BytesRead:    uint64(in.bytes_read),
		LostBytes:    uint64(in.lost_bytes),
		LostEvents:   uint64(in.lost_events),
		Evictions:    uint64(in.evictions),
	}
}

// Info returns this subscriber's own entry: its position, lag, counters
// and losses.
func (s *Subscriber) Info() (SubscriberInfo, error) {
	if s == nil || s.RingBuffer == nil {
		return SubscriberInfo{}, ErrClosed
	}
	var in C.struct_mrb_subscriber_info
	rc := C.mrb_subscriber_info(s.handle(), &in)
	runtime.KeepAlive(s.RingBuffer)
	if rc != 0 {
		return SubscriberInfo{}, codeError(int64(rc))
	}
	return subscriberInfoOf(&in), nil
}

// Subscribers lists the ring's subscribers, in table order: live ones,
// named ones waiting to be resumed and evicted ones. Any handle can call
// it. A queue ring without lossy taps has none.
func (r *RingBuffer) Subscribers() ([]SubscriberInfo, error) {
	list := make([]C.struct_mrb_subscriber_info, MaxSubscribers)
	for {
		n := int64(C.mrb_subscribers(r.handle(), &list[0], C.size_t(len(list))))
		runtime.KeepAlive(r)
		if n < 0 {
			return nil, codeError(n)
		}
		if n > int64(len(list)) { // a table larger than this version's
			list = make([]C.struct_mrb_subscriber_info, n)
			continue
		}
		out := make([]SubscriberInfo, n)
		for i := range out {
			out[i] = subscriberInfoOf(&list[i])
		}
		return out, nil
	}
}

// IsFanOut reports whether the ring is a fan-out ring (CreateOptions
// FanOut). ErrClosed after Close.
func (r *RingBuffer) IsFanOut() (bool, error) {
	rc := C.mrb_is_fanout(r.handle())
	runtime.KeepAlive(r)
	if rc < 0 {
		return false, codeError(int64(rc))
	}
	return rc == 1, nil
}
