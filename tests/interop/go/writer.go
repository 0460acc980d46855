package main

import (
	"context"
	"fmt"

	ringbuffer "github.com/mmap-ringbuffer/mmap_ringbuffer/bindings/go"
)

// runWriter sends a scenario's messages; see docs/INTEROP.md.
func runWriter(a *interopArgs) error {
	s := a.scenario
	var ring *ringbuffer.RingBuffer
	var err error
	if a.fanout {
		// A fan-out ring is opened (NewRingBuffer would refuse it: ErrExists).
		ring, err = ringbuffer.OpenRingBuffer(a.path)
	} else {
		ring, err = ringbuffer.NewRingBuffer(a.path, s.capacity, false)
	}
	if err != nil {
		return err
	}
	defer ring.Close()
	if s.kind == "tagged" && a.barrier != "" {
		if err := barrierWait(a.barrier, a.producer); err != nil {
			return err
		}
	}
	buf := make([]byte, s.maxMessage())
	total := 0
	for i := uint64(0); i < s.count; i++ {
		var msg []byte
		if s.kind == "stream" {
			msg = s.streamMessage(i, buf)
		} else {
			msg = s.taggedMessage(a.producer, i, buf)
		}
		ctx, cancel := context.WithTimeout(context.Background(), interopTimeout)
		err := ring.WriteMsgContext(ctx, msg)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: message %d (%d bytes): %w", s.name, i, len(msg), err)
		}
		total += len(msg)
	}
	fmt.Printf("go writer: %s: %d messages, %d bytes\n", s.name, s.count, total)
	return nil
}
