package ringbuffer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// 200 workers (5 rings, a group of 40 each) blocked in ReadMsgContext park
// in the netpoller on doorbells of their own: the process does not get a
// thread per blocked worker. Each then takes exactly one message, and every
// message goes to exactly one worker.
func TestTwoHundredBlockedWorkersUseFewThreads(t *testing.T) {
	const rings, perRing = 5, 40
	const n = rings * perRing
	dir := t.TempDir()
	feeds := make([]*RingBuffer, rings)
	workers := make([]*Worker, n)
	for i := range feeds {
		path := filepath.Join(dir, fmt.Sprintf("jobs%d", i))
		r, err := CreateRingBuffer(path, 4096, CreateOptions{FanOut: true})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		feeds[i] = r
		for j := 0; j < perRing; j++ {
			w, err := JoinWorker(path, "jobs", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			workers[i*perRing+j] = w
		}
	}
	before := osThreads(t)
	var started, done sync.WaitGroup
	got := make([][]byte, n)
	errs := make([]error, n)
	started.Add(n)
	done.Add(n)
	for i, w := range workers {
		go func(i int, w *Worker) {
			defer done.Done()
			started.Done()
			got[i], errs[i] = w.ReadMsgContext(context.Background())
		}(i, w)
	}
	started.Wait()
	// Time to arm and park (threads, once made, are never given back, so
	// counting later cannot miss any).
	time.Sleep(500 * time.Millisecond)
	blocked := osThreads(t)
	for i, r := range feeds {
		for j := 0; j < perRing; j++ {
			msg := make([]byte, 16)
			binary.LittleEndian.PutUint64(msg, uint64(i))
			binary.LittleEndian.PutUint64(msg[8:], uint64(j))
			if _, err := r.WriteMsg(msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	done.Wait()
	after := osThreads(t)
	seen := map[[2]uint64]int{}
	for i := range workers {
		if errs[i] != nil || len(got[i]) != 16 {
			t.Fatalf("worker %d: %q, %v", i, got[i], errs[i])
		}
		ring := binary.LittleEndian.Uint64(got[i])
		if ring != uint64(i/perRing) {
			t.Fatalf("worker %d of ring %d got a message of ring %d", i, i/perRing, ring)
		}
		key := [2]uint64{ring, binary.LittleEndian.Uint64(got[i][8:])}
		if prev, dup := seen[key]; dup {
			t.Fatalf("message %v went to workers %d and %d", key, prev, i)
		}
		seen[key] = i
	}
	if len(seen) != n {
		t.Fatalf("%d distinct messages, want %d", len(seen), n)
	}
	t.Logf("OS threads: %d before, %d with %d workers blocked, %d after", before, blocked, n, after)
	// A thread per blocked worker would be 200 more (204 seen before the
	// netpoller); under load with -race the runtime adds a few dozen of its
	// own (34 seen against a limit of n/10), so the margin is n/4.
	if after-before > n/4 {
		t.Fatalf("%d OS threads for %d blocked workers (%d before)", after, n, before)
	}
}

// Cancelling a worker's parked read returns the context's error, takes
// nothing (the next message goes to whichever worker reads next, this one
// included), and leaves the worker usable at once, many times over; with a
// second worker of the group parked meanwhile, no message is stranded.
func TestCancelParkedWorkerReadLeavesItUsable(t *testing.T) {
	feed, path := newFanOutRing(t, 4096)
	w, err := JoinWorker(path, "jobs", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	other, err := JoinWorker(path, "jobs", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for i := uint64(0); i < 50; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		res := make(chan error, 1)
		go func() {
			_, err := w.ReadMsgContext(ctx)
			res <- err
		}()
		time.Sleep(time.Millisecond)
		cancel()
		if err := <-res; !errors.Is(err, context.Canceled) {
			t.Fatalf("round %d: %v, want context.Canceled", i, err)
		}
		if i%2 == 0 {
			// The other worker parked: it gets the message.
			got := make(chan []byte, 1)
			go func() {
				m, _ := other.ReadMsgContext(context.Background())
				got <- m
			}()
			time.Sleep(time.Millisecond)
			if _, err := feed.WriteMsg(subMsg(i, 40)); err != nil {
				t.Fatal(err)
			}
			if m := <-got; len(m) != 40 || binary.LittleEndian.Uint64(m) != i {
				t.Fatalf("round %d: the other worker got %v", i, m)
			}
			continue
		}
		if _, err := feed.WriteMsg(subMsg(i, 40)); err != nil {
			t.Fatal(err)
		}
		m, err := w.ReadMsgContext(context.Background())
		if err != nil || binary.LittleEndian.Uint64(m) != i {
			t.Fatalf("round %d: %v, %v", i, m, err)
		}
	}
	if _, err := w.ReadMsg(); err != ErrBufferEmpty {
		t.Fatalf("after all: %v", err)
	}
}

// A worker's exported doorbell: ArmRead on nothing arms it with the
// worker's 100 ms bound, a write rings it, and the next ArmRead reports the
// message ready.
func TestWorkerDoorbellCalls(t *testing.T) {
	feed, path := newFanOutRing(t, 4096)
	w, err := JoinWorker(path, "jobs", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fd, err := w.DoorbellFd(DoorbellRead)
	if err != nil {
		t.Fatal(err)
	}
	ep := epollOn(t, fd)
	ready, wait, err := w.ArmRead()
	if ready || wait != 100*time.Millisecond || err != nil {
		t.Fatalf("ArmRead on nothing: %v, %v, %v", ready, wait, err)
	}
	if _, err := feed.WriteMsg(subMsg(7, 40)); err != nil {
		t.Fatal(err)
	}
	if n := epollWait(t, ep, 10*time.Second); n != 1 {
		t.Fatalf("written: %d events", n)
	}
	if ready, _, err := w.ArmRead(); !ready || err != nil {
		t.Fatalf("ArmRead: %v, %v", ready, err)
	}
	if m, err := w.ReadMsg(); err != nil || binary.LittleEndian.Uint64(m) != 7 {
		t.Fatalf("ReadMsg: %v, %v", m, err)
	}
	if ready, _, err := w.ArmRead(); ready || err != nil {
		t.Fatalf("ArmRead: %v, %v", ready, err)
	}
	if err := w.Disarm(DoorbellRead); err != nil {
		t.Fatal(err)
	}
}
