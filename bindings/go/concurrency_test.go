package ringbuffer

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Many writer goroutines, each with its own sequence, some writing single
// messages and some batches, against one reading goroutine; every message
// is checked for content and per-writer order.
func TestManyWritersOneReader(t *testing.T) {
	const writers = 8
	const maxBody = 300
	perWriter := scaled(40000)
	r, _ := newTestRing(t, 64<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var wg sync.WaitGroup
	writeErrs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(writer uint32) {
			defer wg.Done()
			var msg []byte
			batch := make([][]byte, 0, 16)
			for seq := uint64(0); seq < uint64(perWriter); {
				if writer%2 == 1 {
					// Batches of up to 16; a short count is retried from the
					// first unwritten message, keeping the sequence.
					batch = batch[:0]
					for s := seq; s < uint64(perWriter) && len(batch) < cap(batch); s++ {
						batch = append(batch, appendTestMessage(nil, writer, s, maxBody))
					}
					n, err := r.WriteBatch(batch)
					seq += uint64(n)
					if err != nil && err != ErrBufferFull {
						writeErrs <- err
						cancel() // unblock the reader
						return
					}
					if err == ErrBufferFull {
						runtime.Gosched()
					}
					continue
				}
				msg = appendTestMessage(msg[:0], writer, seq, maxBody)
				if err := r.WriteMsgContext(ctx, msg); err != nil {
					writeErrs <- err
					cancel()
					return
				}
				seq++
			}
		}(uint32(w))
	}

	checker := newSequenceChecker(maxBody)
	buf := make([]byte, r.MaxMessageSize())
	lengths := make([]int, 32)
	for received := 0; received < writers*perWriter; {
		select {
		case err := <-writeErrs:
			t.Fatalf("writer failed: %v", err)
		default:
		}
		// Alternate the read paths; all must agree on order and content.
		switch received % 3 {
		case 0:
			msg, err := r.ReadMsgContext(ctx)
			if err != nil {
				select {
				case werr := <-writeErrs:
					t.Fatalf("writer failed: %v", werr)
				default:
				}
				t.Fatalf("ReadMsgContext after %d messages: %v", received, err)
			}
			if err := checker.check(msg); err != nil {
				t.Fatalf("message %d: %v", received, err)
			}
			received++
		case 1:
			n, err := r.ReadMsgInto(buf)
			if err == ErrBufferEmpty {
				runtime.Gosched()
				continue
			}
			if err != nil {
				t.Fatalf("ReadMsgInto: %v", err)
			}
			if err := checker.check(buf[:n]); err != nil {
				t.Fatalf("message %d: %v", received, err)
			}
			received++
		case 2:
			n, err := r.ReadBatchInto(buf, lengths)
			if err == ErrBufferEmpty {
				runtime.Gosched()
				continue
			}
			if err != nil {
				t.Fatalf("ReadBatchInto: %v", err)
			}
			rest := buf
			for _, l := range lengths[:n] {
				if err := checker.check(rest[:l]); err != nil {
					t.Fatalf("message %d: %v", received, err)
				}
				rest = rest[l:]
				received++
			}
		}
	}
	wg.Wait()
	for w := uint32(0); w < writers; w++ {
		if got := checker.next[w]; got != uint64(perWriter) {
			t.Fatalf("writer %d: %d messages, want %d", w, got, perWriter)
		}
	}
	if _, err := r.ReadMsg(); err != ErrBufferEmpty {
		t.Fatalf("ReadMsg after all: %v; want ErrBufferEmpty", err)
	}
	s, err := r.Stats()
	if err != nil || s.MessagesWritten != uint64(writers*perWriter) || s.MessagesRead != s.MessagesWritten || s.UsedBytes != 0 {
		t.Fatalf("Stats() = %+v, %v", s, err)
	}
}

// Close while other goroutines write and read: every call returns a result
// or ErrClosed, none crashes, and after Close all of them get ErrClosed.
func TestCloseWhileInUse(t *testing.T) {
	r, _ := newTestRing(t, 4096)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	results := make(chan error, 5)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, err := r.WriteMsg([]byte("payload")); err == ErrClosed {
					results <- nil
					return
				} else if err != nil && err != ErrBufferFull {
					results <- err
					return
				}
				runtime.Gosched()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if _, err := r.ReadMsgContext(ctx); err == ErrClosed {
				results <- nil
				return
			} else if err != nil {
				results <- err
				return
			}
		}
	}()
	// Let the goroutines run a little; correctness does not depend on how
	// much they did.
	for i := 0; i < 100; i++ {
		runtime.Gosched()
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Fatalf("a goroutine failed: %v", err)
		}
	}
}

// A RingBuffer dropped without Close releases the consumer role (through
// its finalizer), so another handle can then read.
func TestFinalizerClosesForgottenHandle(t *testing.T) {
	r, path := newTestRing(t, 4096)
	if _, err := r.WriteMsg([]byte("kept")); err != nil {
		t.Fatal(err)
	}
	func() {
		forgotten, err := OpenRingBuffer(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := forgotten.ReadMsgInto(nil); err != ErrBufferTooSmall {
			t.Fatalf("forgotten.ReadMsgInto(nil): %v", err)
		}
	}()
	if _, err := r.ReadMsg(); err != ErrConsumerBusy {
		t.Fatalf("ReadMsg while another handle is consumer: %v", err)
	}
	for i := 0; ; i++ {
		runtime.GC()
		msg, err := r.ReadMsg()
		if err == nil {
			if string(msg) != "kept" {
				t.Fatalf("ReadMsg = %q", msg)
			}
			return
		}
		if !errors.Is(err, ErrConsumerBusy) || i == 100 {
			t.Fatalf("ReadMsg after %d GCs: %v", i+1, err)
		}
		time.Sleep(time.Millisecond)
	}
}
