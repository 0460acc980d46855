package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strings"

	ringbuffer "github.com/mmap-ringbuffer/mmap_ringbuffer/bindings/go"
)

// errMismatch marks a verification failure (exit status 1), as opposed to
// a failure to run at all.
var errMismatch = errors.New("mismatch")

func mismatch(what string, index uint64, got, want []byte) error {
	at := 0
	for at < len(got) && at < len(want) && got[at] == want[at] {
		at++
	}
	return fmt.Errorf("%w: %s %d: got %d bytes, want %d; first difference at byte %d",
		errMismatch, what, index, len(got), len(want), at)
}

func readOne(ring *ringbuffer.RingBuffer, s *scenario, index uint64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), interopTimeout)
	defer cancel()
	msg, err := ring.ReadMsgContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: reading message %d: %w", s.name, index, err)
	}
	return msg, nil
}

// runReader receives a scenario's messages and checks bytes, order and count
// exactly; see docs/INTEROP.md. With --rings N, it reads N rings at once, a
// goroutine each, all waiting in the netpoller.
func runReader(a *interopArgs) error {
	if a.rings > 0 {
		return runReaders(a)
	}
	return readRing(a, a.path)
}

func runReaders(a *interopArgs) error {
	errs := make(chan error, a.rings)
	for i := 0; i < a.rings; i++ {
		go func(i int) { errs <- readRing(a, fmt.Sprintf("%s.%d", a.path, i)) }(i)
	}
	for i := 0; i < a.rings; i++ {
		if err := <-errs; err != nil {
			return err
		}
	}
	fmt.Printf("go reader: %d rings read by %d goroutines, %s OS threads\n", a.rings, a.rings, osThreads())
	return nil
}

// osThreads is this process's number of OS threads, from /proc.
func osThreads() string {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "Threads:"); ok {
			return strings.TrimSpace(rest)
		}
	}
	return "?"
}

func readRing(a *interopArgs, path string) error {
	s := a.scenario
	ring, err := ringbuffer.NewRingBuffer(path, s.capacity, false)
	if err != nil {
		return err
	}
	defer ring.Close()
	var count uint64
	var total int
	note := ""
	if s.kind == "stream" {
		count, total, err = readStream(ring, s, a.from, a.to)
		note = fmt.Sprintf(" (%d..%d)", a.from, a.to)
	} else {
		var switches int
		count, total, switches, err = readTagged(ring, s, a.producers)
		note = fmt.Sprintf(" (%d producers, %d producer switches)", a.producers, switches)
	}
	if err != nil {
		return err
	}
	// Only the last of several turns sees the end of the stream.
	if s.kind == "stream" && a.to < s.count {
		fmt.Printf("go reader: %s: %d messages, %d bytes OK%s\n", s.name, count, total, note)
		return nil
	}
	if extra, err := ring.ReadMsg(); err != ringbuffer.ErrBufferEmpty {
		return fmt.Errorf("%w: %s: expected an empty ring at the end, got %d bytes, %v",
			errMismatch, s.name, len(extra), err)
	}
	fmt.Printf("go reader: %s: %d messages, %d bytes OK%s\n", s.name, count, total, note)
	return nil
}

func readStream(ring *ringbuffer.RingBuffer, s *scenario, from, to uint64) (uint64, int, error) {
	want := make([]byte, s.maxMessage())
	total := 0
	for i := from; i < to; i++ {
		got, err := readOne(ring, s, i)
		if err != nil {
			return 0, 0, err
		}
		expected := s.streamMessage(i, want)
		if !bytes.Equal(got, expected) {
			return 0, 0, mismatch("message", i, got, expected)
		}
		total += len(got)
	}
	return to - from, total, nil
}

// readTagged checks that each producer's messages arrive complete (crc), in
// its order, none missing or repeated; producers interleave freely.
func readTagged(ring *ringbuffer.RingBuffer, s *scenario, producers int) (all uint64, total, switches int, err error) {
	want := make([]byte, s.maxMessage())
	next := make([]uint64, producers)
	all = s.count * uint64(producers)
	last := -1
	for i := uint64(0); i < all; i++ {
		got, err := readOne(ring, s, i)
		if err != nil {
			return 0, 0, 0, err
		}
		total += len(got)
		n := len(got)
		if n < taggedOverhead || binary.LittleEndian.Uint32(got[n-4:]) != crc32.ChecksumIEEE(got[:n-4]) {
			return 0, 0, 0, fmt.Errorf("%w: message %d: bad checksum (torn?)", errMismatch, i)
		}
		producer := int(got[0])
		seq := uint64(binary.LittleEndian.Uint32(got[1:]))
		if producer >= producers || seq != next[producer] || seq >= s.count {
			return 0, 0, 0, fmt.Errorf("%w: message %d: producer %d seq %d out of order",
				errMismatch, i, producer, seq)
		}
		expected := s.taggedMessage(producer, seq, want)
		if !bytes.Equal(got, expected) {
			return 0, 0, 0, mismatch("tagged message", i, got, expected)
		}
		next[producer]++
		if last >= 0 && producer != last {
			switches++
		}
		last = producer
	}
	return all, total, switches, nil
}
