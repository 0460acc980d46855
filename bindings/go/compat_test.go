package ringbuffer

// Behaviour kept from github.com/EBWi11/mmap_ringbuffer, and its bugs fixed.

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// The original README's basic example, as written apart from the import
// path and the file name.
func TestReadmeBasicExample(t *testing.T) {
	rb, err := NewRingBuffer(filepath.Join(t.TempDir(), "rb.mmap"), 1024*1024, true)
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()

	msg := []byte("hello, mmap ringbuffer!")
	ok, err := rb.WriteMsg(msg)
	if !ok || err != nil {
		t.Fatalf("WriteMsg = %v, %v; want true, nil", ok, err)
	}

	readMsg, err := rb.ReadMsg()
	if err != nil {
		t.Fatalf("ReadMsg: %v", err)
	}
	if string(readMsg) != "hello, mmap ringbuffer!" {
		t.Fatalf("ReadMsg = %q", readMsg)
	}
	if _, err := rb.ReadMsg(); err != ErrBufferEmpty {
		t.Fatalf("second ReadMsg error = %v, want ErrBufferEmpty", err)
	}
}

// The original README's producer-consumer example, whose consumer looped
// forever; here it stops after the 1000 messages the producer writes, and
// the order and content are checked.
func TestReadmeProducerConsumerExample(t *testing.T) {
	const count = 1000
	rb, err := NewRingBuffer(filepath.Join(t.TempDir(), "rb.mmap"), 1024*1024, true)
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()

	var wg sync.WaitGroup
	wg.Add(2)
	var writeErr error
	var received []string
	go func() { // producer
		defer wg.Done()
		for i := 0; i < count; i++ {
			msg := []byte(fmt.Sprintf("message-%d", i))
			ok, err := rb.WriteMsg(msg)
			if !ok || err != nil {
				writeErr = fmt.Errorf("failed to write: %v", err)
				return
			}
		}
	}()
	go func() { // consumer
		defer wg.Done()
		for len(received) < count {
			msg, err := rb.ReadMsg()
			if err == ErrBufferEmpty {
				continue
			}
			if err != nil {
				t.Errorf("failed to read: %v", err)
				return
			}
			received = append(received, string(msg))
		}
	}()
	wg.Wait()
	if writeErr != nil {
		t.Fatal(writeErr)
	}
	for i, got := range received {
		if want := fmt.Sprintf("message-%d", i); got != want {
			t.Fatalf("message %d = %q, want %q", i, got, want)
		}
	}
}

// The original's 256-byte ring took about thirty 4-byte messages; with
// 16-byte record headers this one takes exactly eight (see the package doc).
func TestTinyRingFillsUp(t *testing.T) {
	rb, _ := newTestRing(t, 256)
	if got := rb.Capacity(); got != 256 {
		t.Fatalf("Capacity() = %d, want 256", got)
	}
	written := 0
	for {
		ok, err := rb.WriteMsg([]byte{1, 2, 3, byte(written)})
		if err == ErrBufferFull {
			if ok {
				t.Fatal("WriteMsg returned true with ErrBufferFull")
			}
			break
		}
		if !ok || err != nil {
			t.Fatalf("WriteMsg #%d = %v, %v", written, ok, err)
		}
		written++
		if written > 8 {
			t.Fatal("a 256-byte ring took more than eight 4-byte messages")
		}
	}
	if written != 8 {
		t.Fatalf("a 256-byte ring took %d 4-byte messages, want 8", written)
	}
	for i := 0; i < written; i++ {
		msg, err := rb.ReadMsg()
		if err != nil || string(msg) != string([]byte{1, 2, 3, byte(i)}) {
			t.Fatalf("ReadMsg #%d = %v, %v", i, msg, err)
		}
	}
	if _, err := rb.ReadMsg(); err != ErrBufferEmpty {
		t.Fatalf("ReadMsg after draining: %v, want ErrBufferEmpty", err)
	}
	// Freed space is reusable.
	if ok, err := rb.WriteMsg([]byte("more")); !ok || err != nil {
		t.Fatalf("WriteMsg after draining = %v, %v", ok, err)
	}
}

func TestMessageOfRingSizeDoesNotFit(t *testing.T) {
	rb, _ := newTestRing(t, 1024)
	ok, err := rb.WriteMsg(make([]byte, 1024))
	if ok || err != ErrInvalidSize {
		t.Fatalf("WriteMsg(1024 bytes) = %v, %v; want false, ErrInvalidSize", ok, err)
	}
	maxSize := rb.MaxMessageSize()
	if maxSize <= 0 || maxSize > 512 {
		t.Fatalf("MaxMessageSize() = %d, want 1..512 (at most half the ring)", maxSize)
	}
	if ok, err := rb.WriteMsg(make([]byte, maxSize)); !ok || err != nil {
		t.Fatalf("WriteMsg(MaxMessageSize bytes) = %v, %v", ok, err)
	}
	if ok, err := rb.WriteMsg(make([]byte, maxSize+1)); ok || err != ErrInvalidSize {
		t.Fatalf("WriteMsg(MaxMessageSize+1 bytes) = %v, %v; want ErrInvalidSize", ok, err)
	}
}

// The original zeroed the file even when remove was false.
func TestCreateWithoutRemoveKeepsUnreadMessages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ring.mrb")
	first, err := NewRingBuffer(path, 4096, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"one", "two", "three"} {
		if ok, err := first.WriteMsg([]byte(m)); !ok || err != nil {
			t.Fatalf("WriteMsg(%q) = %v, %v", m, ok, err)
		}
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	again, err := NewRingBuffer(path, 4096, false)
	if err != nil {
		t.Fatalf("NewRingBuffer(existing, remove=false): %v", err)
	}
	for _, want := range []string{"one", "two", "three"} {
		msg, err := again.ReadMsg()
		if err != nil || string(msg) != want {
			t.Fatalf("ReadMsg = %q, %v; want %q", msg, err, want)
		}
	}
	again.Close()

	// remove=true starts over.
	fresh, err := NewRingBuffer(path, 4096, true)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if _, err := fresh.WriteMsg([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if msg, err := fresh.ReadMsg(); err != nil || string(msg) != "x" {
		t.Fatalf("ReadMsg after remove = %q, %v; want \"x\"", msg, err)
	}
}

// The original corrupted messages once variable-size messages left less
// than a length header before the end of the ring (after about 470,000
// mixed-size messages in a 64 KiB ring). Every message is checked here.
func TestMixedSizesOverManyWrapsNeverCorrupt(t *testing.T) {
	rb, _ := newTestRing(t, 64<<10)
	total := uint64(scaled(500000))
	maxBody := 700 // up to 716-byte messages: many records per lap, every alignment
	checker := newSequenceChecker(maxBody)
	buf := make([]byte, rb.MaxMessageSize())
	var msg []byte
	var written, read uint64
	for read < total {
		// Fill until full, then drain part of it, so the free region starts
		// and ends at ever-changing offsets.
		for written < total {
			msg = appendTestMessage(msg[:0], 0, written, maxBody)
			ok, err := rb.WriteMsg(msg)
			if err == ErrBufferFull {
				break
			}
			if !ok || err != nil {
				t.Fatalf("WriteMsg #%d: %v", written, err)
			}
			written++
		}
		for drain := (written-read)/2 + 1; drain > 0 && read < written; drain-- {
			n, err := rb.ReadMsgInto(buf)
			if err != nil {
				t.Fatalf("ReadMsgInto #%d: %v", read, err)
			}
			if err := checker.check(buf[:n]); err != nil {
				t.Fatalf("message #%d: %v", read, err)
			}
			read++
		}
	}
	if _, err := rb.ReadMsg(); !errors.Is(err, ErrBufferEmpty) {
		t.Fatalf("ReadMsg after all: %v, want ErrBufferEmpty", err)
	}
	laps := func() uint64 { s, _ := rb.Stats(); return s.ProducerPosition / s.Capacity }()
	if laps < 10 {
		t.Fatalf("only %d laps of the ring; the test should wrap many times", laps)
	}
}
