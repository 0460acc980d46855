package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	ringbuffer "github.com/mmap-ringbuffer/mmap_ringbuffer/bindings/go"
)

// vectorDescription is a tests/vectors/NAME.json file.
type vectorDescription struct {
	File      string   `json:"file"`
	Capacity  int      `json:"capacity"`
	OpenError *string  `json:"open_error"`
	Messages  []string `json:"messages"`
	// Fan-out vectors: the reader table and who resumes.
	Mode            string             `json:"mode"`
	ReleasePosition uint64             `json:"release_position"`
	Resume          string             `json:"resume"`
	Subscribers     []vectorSubscriber `json:"subscribers"`
}

// checkVectors opens a copy of every golden vector in dir (reading moves the
// consumer position, so the committed file is never opened) and reads
// exactly the described messages, or expects ErrVersion.
// vectorSubscriber is an entry of a fan-out vector's reader table.
type vectorSubscriber struct {
	Index       int    `json:"index"`
	Name        string `json:"name"`
	Lossy       bool   `json:"lossy"`
	State       uint32 `json:"state"`
	Position    uint64 `json:"position"`
	LagMessages uint64 `json:"lag_messages"`
}

// The reader table's bytes (docs/FORMAT.md section 8), checked in the file
// (the layout) and through the binding's listing (checkSubscriberList).
const (
	readerModeOffset  = 0x9000
	readerEntryOffset = 0xa000
	readerEntrySize   = 256
	entryStateOffset  = 0x18
	entryFlagsOffset  = 0x1c
	entryNameOffset   = 0x40
	entryPosOffset    = 0x80
	entryFlagLossy    = 1 << 0
	entryFlagNamed    = 1 << 2
	releaseOffset     = 0x180
)

func checkFanoutBytes(d *vectorDescription, b []byte) error {
	le := binary.LittleEndian
	if len(b) < readerEntryOffset+64*readerEntrySize {
		return fmt.Errorf("file of %d bytes", len(b))
	}
	if mode := le.Uint32(b[readerModeOffset:]); mode != 1 {
		return fmt.Errorf("reader mode %d, want 1 (fan-out)", mode)
	}
	if r := le.Uint64(b[releaseOffset:]); r != d.ReleasePosition {
		return fmt.Errorf("release position %d, want %d", r, d.ReleasePosition)
	}
	for _, s := range d.Subscribers {
		e := b[readerEntryOffset+s.Index*readerEntrySize:][:readerEntrySize]
		name := string(bytes.TrimRight(e[entryNameOffset:entryNameOffset+32], "\x00"))
		flags := le.Uint32(e[entryFlagsOffset:])
		want := uint32(0)
		if s.Lossy {
			want |= entryFlagLossy
		}
		if s.Name != "" {
			want |= entryFlagNamed
		}
		if name != s.Name || flags != want || le.Uint32(e[entryStateOffset:]) != s.State ||
			le.Uint64(e[entryPosOffset:]) != s.Position {
			return fmt.Errorf("entry %d (%q, flags %d, state %d, position %d) is not %+v",
				s.Index, name, flags, le.Uint32(e[entryStateOffset:]),
				le.Uint64(e[entryPosOffset:]), s)
		}
	}
	return nil
}

// checkSubscriberList compares the binding's listing (Subscribers, i.e.
// mrb_subscribers) with the vector's table, lag_messages included.
func checkSubscriberList(d *vectorDescription, ring *ringbuffer.RingBuffer) error {
	list, err := ring.Subscribers()
	if err != nil {
		return err
	}
	if len(list) != len(d.Subscribers) {
		return fmt.Errorf("%d subscribers listed, want %d", len(list), len(d.Subscribers))
	}
	for i, s := range d.Subscribers {
		got := vectorSubscriber{Index: list[i].Index, Name: list[i].Name, Lossy: list[i].Lossy,
			State: uint32(list[i].State), Position: list[i].Position, LagMessages: list[i].LagMessages}
		if got != s {
			return fmt.Errorf("subscriber listed as %+v, want %+v", got, s)
		}
	}
	return nil
}

func checkVectors(dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(names) == 0 {
		return fmt.Errorf("no vectors in %s", dir)
	}
	sort.Strings(names)
	scratch, err := os.MkdirTemp("", "go-vectors")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	var failed []string
	for _, name := range names {
		vector := strings.TrimSuffix(filepath.Base(name), ".json")
		if err := checkVector(name, scratch); err != nil {
			fmt.Fprintf(os.Stderr, "go vectors: %s: %v\n", vector, err)
			failed = append(failed, vector)
			continue
		}
		fmt.Printf("go vectors: %s OK\n", vector)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w: vectors %s", errMismatch, strings.Join(failed, ", "))
	}
	return nil
}

func checkVector(descriptionPath, scratch string) error {
	text, err := os.ReadFile(descriptionPath)
	if err != nil {
		return err
	}
	var d vectorDescription
	if err := json.Unmarshal(text, &d); err != nil {
		return err
	}
	ringBytes, err := os.ReadFile(filepath.Join(filepath.Dir(descriptionPath), d.File))
	if err != nil {
		return err
	}
	copyPath := filepath.Join(scratch, d.File)
	if err := os.WriteFile(copyPath, ringBytes, 0o600); err != nil {
		return err
	}
	ring, err := ringbuffer.OpenRingBuffer(copyPath)
	if d.OpenError != nil {
		if *d.OpenError != "version" {
			return fmt.Errorf("unsupported open_error %q", *d.OpenError)
		}
		if err == nil {
			ring.Close()
		}
		if !errors.Is(err, ringbuffer.ErrVersion) {
			return fmt.Errorf("open gave %v, want ErrVersion", err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	defer ring.Close()
	if ring.Capacity() != d.Capacity {
		return fmt.Errorf("capacity %d, want %d", ring.Capacity(), d.Capacity)
	}
	if d.Mode == "fanout" {
		if err := checkFanoutBytes(&d, ringBytes); err != nil {
			return err
		}
		if err := checkSubscriberList(&d, ring); err != nil {
			return err
		}
		// What a reader resuming the named subscriber gets.
		sub, err := ringbuffer.Subscribe(copyPath, ringbuffer.SubscribeOptions{Name: d.Resume})
		if err != nil {
			return fmt.Errorf("subscribe %q: %v", d.Resume, err)
		}
		defer sub.Close()
		ring = sub.RingBuffer
	}
	for i, encoded := range d.Messages {
		want, err := hex.DecodeString(encoded)
		if err != nil {
			return err
		}
		got, err := ring.ReadMsg()
		if err != nil {
			return fmt.Errorf("message %d: %v", i, err)
		}
		if string(got) != string(want) {
			return fmt.Errorf("message %d: got %x, want %x", i, got, want)
		}
	}
	if extra, err := ring.ReadMsg(); err != ringbuffer.ErrBufferEmpty {
		return fmt.Errorf("%d messages expected, then got %d bytes, %v", len(d.Messages), len(extra), err)
	}
	return nil
}
