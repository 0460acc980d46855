package ringbuffer

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestContextAlreadyDone(t *testing.T) {
	r, _ := newTestRing(t, 256)
	if _, err := r.WriteMsg([]byte("waiting")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.ReadMsgContext(ctx); err != context.Canceled {
		t.Fatalf("ReadMsgContext(cancelled): %v; want context.Canceled", err)
	}
	if err := r.WriteMsgContext(ctx, []byte("x")); err != context.Canceled {
		t.Fatalf("WriteMsgContext(cancelled): %v; want context.Canceled", err)
	}
	past, cancelPast := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancelPast()
	if _, err := r.ReadMsgContext(past); err != context.DeadlineExceeded {
		t.Fatalf("ReadMsgContext(past deadline): %v; want context.DeadlineExceeded", err)
	}
	// Nothing was consumed or written by the refused calls.
	if msg, err := r.ReadMsg(); err != nil || string(msg) != "waiting" {
		t.Fatalf("ReadMsg = %q, %v", msg, err)
	}
	if _, err := r.ReadMsg(); err != ErrBufferEmpty {
		t.Fatalf("ReadMsg: %v; want ErrBufferEmpty", err)
	}
}

func TestReadContextCancelledWhileWaiting(t *testing.T) {
	r, _ := newTestRing(t, 4096)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.ReadMsgContext(ctx)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // let it block (not needed for correctness)
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("ReadMsgContext: %v; want context.Canceled", err)
	}
}

func TestReadContextDeadline(t *testing.T) {
	r, _ := newTestRing(t, 4096)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := r.ReadMsgContext(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReadMsgContext: %v; want context.DeadlineExceeded", err)
	}
}

func TestWriteContextCancelledWhileFull(t *testing.T) {
	r, _ := newTestRing(t, 256)
	for {
		if _, err := r.WriteMsg([]byte("fill")); err == ErrBufferFull {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.WriteMsgContext(ctx, []byte("blocked")) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("WriteMsgContext: %v; want context.Canceled", err)
	}
	// A message that can never fit fails at once instead of waiting.
	if err := r.WriteMsgContext(context.Background(), make([]byte, 200)); err != ErrInvalidSize {
		t.Fatalf("WriteMsgContext(too big): %v; want ErrInvalidSize", err)
	}
}

// A blocked reader is woken by a write, a blocked writer by a read.
func TestContextWaitsAreWoken(t *testing.T) {
	r, _ := newTestRing(t, 256)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	got := make(chan []byte, 1)
	go func() {
		msg, err := r.ReadMsgContext(ctx)
		if err != nil {
			t.Errorf("ReadMsgContext: %v", err)
		}
		got <- msg
	}()
	if err := r.WriteMsgContext(ctx, []byte("wake up")); err != nil {
		t.Fatal(err)
	}
	if msg := <-got; string(msg) != "wake up" {
		t.Fatalf("ReadMsgContext = %q", msg)
	}

	filled := 0
	for {
		if _, err := r.WriteMsg([]byte{byte(filled)}); err == ErrBufferFull {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		filled++
	}
	wrote := make(chan error, 1)
	go func() { wrote <- r.WriteMsgContext(ctx, []byte{byte(filled)}) }()
	for i := 0; i <= filled; i++ {
		msg, err := r.ReadMsgContext(ctx)
		if err != nil || len(msg) != 1 || msg[0] != byte(i) {
			t.Fatalf("message %d = %v, %v", i, msg, err)
		}
		if i == 0 {
			if err := <-wrote; err != nil {
				t.Fatalf("WriteMsgContext: %v", err)
			}
		}
	}
}

func TestCloseWakesBlockedCalls(t *testing.T) {
	r, _ := newTestRing(t, 4096)
	done := make(chan error, 1)
	go func() {
		_, err := r.ReadMsgContext(context.Background())
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != ErrClosed {
		t.Fatalf("ReadMsgContext after Close: %v; want ErrClosed", err)
	}
	if err := r.WriteMsgContext(context.Background(), []byte("x")); err != ErrClosed {
		t.Fatalf("WriteMsgContext after Close: %v; want ErrClosed", err)
	}
}

func TestReadBatchContext(t *testing.T) {
	r, _ := newTestRing(t, 4096)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	buf := make([]byte, 64)
	lengths := make([]int, 8)
	got := make(chan int, 1)
	go func() {
		n, err := r.ReadBatchContext(ctx, buf, lengths)
		if err != nil {
			t.Errorf("ReadBatchContext: %v", err)
		}
		got <- n
	}()
	if _, err := r.WriteBatch([][]byte{[]byte("a")}); err != nil {
		t.Fatal(err)
	}
	if n := <-got; n != 1 || lengths[0] != 1 || buf[0] != 'a' {
		t.Fatalf("ReadBatchContext = %d, lengths[0] %d, %q", n, lengths[0], buf[:1])
	}

	short, cancelShort := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelShort()
	if n, err := r.ReadBatchContext(short, buf, lengths); n != 0 || err != context.DeadlineExceeded {
		t.Fatalf("ReadBatchContext(empty, deadline) = %d, %v", n, err)
	}
	r.Close()
	if _, err := r.ReadBatchContext(ctx, buf, lengths); err != ErrClosed {
		t.Fatalf("ReadBatchContext after Close: %v", err)
	}
}

func TestReadMsgIntoContext(t *testing.T) {
	r, _ := newTestRing(t, 4096)
	dst := make([]byte, 64)
	// A message already there: returned without waiting.
	if _, err := r.WriteMsg([]byte("ready")); err != nil {
		t.Fatal(err)
	}
	if n, err := r.ReadMsgIntoContext(context.Background(), dst); err != nil || string(dst[:n]) != "ready" {
		t.Fatalf("ReadMsgIntoContext = %q, %v", dst[:n], err)
	}
	// Woken by a write from another goroutine.
	go func() {
		time.Sleep(20 * time.Millisecond)
		r.WriteMsg([]byte("later"))
	}()
	if n, err := r.ReadMsgIntoContext(context.Background(), dst); err != nil || string(dst[:n]) != "later" {
		t.Fatalf("ReadMsgIntoContext = %q, %v", dst[:n], err)
	}
	// Too small a buffer: the size needed, nothing consumed.
	if _, err := r.WriteMsg(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if n, err := r.ReadMsgIntoContext(context.Background(), dst); err != ErrBufferTooSmall || n != 100 {
		t.Fatalf("ReadMsgIntoContext(small) = %d, %v; want 100, ErrBufferTooSmall", n, err)
	}
	if n, err := r.ReadMsgIntoContext(context.Background(), make([]byte, 100)); err != nil || n != 100 {
		t.Fatalf("ReadMsgIntoContext = %d, %v", n, err)
	}
	// Deadline, and a context already done (checked before the ring).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := r.ReadMsgIntoContext(ctx, dst); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReadMsgIntoContext: %v; want context.DeadlineExceeded", err)
	}
	r.WriteMsg([]byte("kept"))
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if _, err := r.ReadMsgIntoContext(done, dst); err != context.Canceled {
		t.Fatalf("ReadMsgIntoContext(cancelled): %v; want context.Canceled", err)
	}
	if n, err := r.ReadMsgInto(dst); err != nil || string(dst[:n]) != "kept" {
		t.Fatalf("ReadMsgInto = %q, %v", dst[:n], err)
	}
}
