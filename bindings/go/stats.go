package ringbuffer

/*
#include "mrb.h"
*/
import "C"

import (
	"math"
	"runtime"
	"time"
)

// Stats is a snapshot of a ring's shared counters, as seen by any handle.
type Stats struct {
	FormatVersion    uint32
	Capacity         uint64 // data bytes
	MaxMessageSize   uint64 // largest message accepted
	ProducerPosition uint64
	ConsumerPosition uint64
	UsedBytes        uint64 // ProducerPosition - ConsumerPosition
	MessagesWritten  uint64 // derived, not counted: MessagesRead + the unread messages
	BytesWritten     uint64 // payload bytes; derived like MessagesWritten
	MessagesRead     uint64 // counted by the consumer
	BytesRead        uint64
	FullCount        uint64 // writes refused as full
	RecoveredRecords uint64 // records of crashed writers skipped
	RecoveredBytes   uint64
	ConsumerPID      int  // 0 when no consumer is attached
	ConsumerAlive    bool // the consumer process is alive
	Producers        int  // producer slots in use
	ProducersAlive   int
	CreatorPID       int
	Created          time.Time
	SkippedLive      uint64 // live writers' claims skipped by the hung-writer timeout
	DeliveredLate    uint64 // messages of such claims delivered after all
	// Salt is the ring's random stamp salt, fixed at creation: with Created
	// it names the ring (a file re-created at the same path gets another).
	Salt uint64
	// SoleProducerPID is the pid of the process whose producer holds the
	// sole-producer lease: writing alone, it claims space with a plain store
	// instead of a compare-and-swap (the fast path, docs/FORMAT.md section
	// 7). 0 when no producer holds it (producers claim by CAS) or it is
	// being taken back; SoleProducerSlot is then -1.
	SoleProducerPID int
	// SoleProducerSlot is the holder's producer slot index, -1 if none.
	SoleProducerSlot int
}

// Stats returns the ring's counters. It consumes nothing and works on any
// handle, including one that is not the consumer.
func (r *RingBuffer) Stats() (Stats, error) {
	var s C.struct_mrb_stats
	rc := C.mrb_stats(r.handle(), &s)
	runtime.KeepAlive(r)
	if rc != 0 {
		return Stats{}, codeError(int64(rc))
	}
	return Stats{
		FormatVersion:    uint32(s.format_version),
		Capacity:         uint64(s.capacity),
		MaxMessageSize:   uint64(s.max_message_size),
		ProducerPosition: uint64(s.producer_position),
		ConsumerPosition: uint64(s.consumer_position),
		UsedBytes:        uint64(s.used_bytes),
		MessagesWritten:  uint64(s.messages_written),
		BytesWritten:     uint64(s.bytes_written),
		MessagesRead:     uint64(s.messages_read),
		BytesRead:        uint64(s.bytes_read),
		FullCount:        uint64(s.full_count),
		RecoveredRecords: uint64(s.recovered_records),
		RecoveredBytes:   uint64(s.recovered_bytes),
		ConsumerPID:      int(s.consumer_pid),
		ConsumerAlive:    s.consumer_alive != 0,
		Producers:        int(s.producers),
		ProducersAlive:   int(s.producers_alive),
		CreatorPID:       int(s.creator_pid),
		Created:          time.Unix(0, int64(s.created_unix_ns)),
		SkippedLive:      uint64(s.skipped_live),
		DeliveredLate:    uint64(s.delivered_late),
		Salt:             uint64(s.salt),
		SoleProducerPID:  int(s.sole_producer_pid),
		SoleProducerSlot: soleProducerSlot(uint32(s.sole_producer_slot)),
	}, nil
}

// soleProducerSlot maps the C library's UINT32_MAX (no holder) to -1.
func soleProducerSlot(slot uint32) int {
	if slot == math.MaxUint32 {
		return -1
	}
	return int(slot)
}

// GetHeadTail is the original package's view of the positions, kept for
// code that calls it: head is where the next message will be written and
// tail where the next one will be read. Here they are the low 32 bits of the
// ring's 64-bit producer and consumer positions (bytes since the ring was
// created, record headers and padding included), not offsets into the file
// as in the original; for rings below 4 GiB, head == tail exactly when the
// ring is empty and head-tail (uint32 arithmetic) is UsedBytes. Use Stats
// for the full positions. After Close, or on error, both are 0.
func (r *RingBuffer) GetHeadTail() (head, tail uint32) {
	s, err := r.Stats()
	if err != nil {
		return 0, 0
	}
	return uint32(s.ProducerPosition), uint32(s.ConsumerPosition)
}
