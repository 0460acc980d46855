package ringbuffer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// osThreads is the number of OS threads of this process (/proc/self/status).
func osThreads(t *testing.T) int {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "Threads:") {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "Threads:")))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads: line in /proc/self/status")
	return 0
}

// 1,000 goroutines blocked in ReadMsgContext on 1,000 rings park in the
// netpoller: the process does not get a thread per blocked goroutine. Each
// then gets exactly its ring's message.
func TestThousandBlockedReadersUseFewThreads(t *testing.T) {
	const n = 1000
	dir := t.TempDir()
	rings := make([]*RingBuffer, n)
	for i := range rings {
		r, err := NewRingBuffer(filepath.Join(dir, fmt.Sprintf("r%d", i)), 256, true)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rings[i] = r
	}
	before := osThreads(t)
	var started, done sync.WaitGroup
	got := make([][]byte, n)
	errs := make([]error, n)
	started.Add(n)
	done.Add(n)
	for i := range rings {
		go func(i int) {
			defer done.Done()
			started.Done()
			got[i], errs[i] = rings[i].ReadMsgContext(context.Background())
		}(i)
	}
	started.Wait()
	// Give every goroutine time to arm and park (threads, once made, are
	// never given back, so counting later cannot miss any).
	time.Sleep(500 * time.Millisecond)
	blocked := osThreads(t)
	for i, r := range rings {
		if err := r.WriteMsgContext(context.Background(), []byte(fmt.Sprintf("m%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	done.Wait()
	after := osThreads(t)
	for i := range rings {
		if errs[i] != nil || string(got[i]) != fmt.Sprintf("m%d", i) {
			t.Fatalf("ring %d: got %q, %v", i, got[i], errs[i])
		}
		if _, err := rings[i].ReadMsg(); err != ErrBufferEmpty {
			t.Fatalf("ring %d: a second message: %v", i, err)
		}
	}
	t.Logf("OS threads: %d before, %d with %d goroutines blocked, %d after", before, blocked, n, after)
	// Arming makes short cgo calls (a membarrier each): a few may outlast
	// the runtime's hand-off threshold and take a thread of their own
	// meanwhile, but nowhere near one per blocked goroutine.
	if after-before > n/10 {
		t.Fatalf("%d OS threads for %d blocked goroutines (%d before)", after, n, before)
	}
}

// Writers blocked on full rings park too, and a read wakes exactly them.
func TestBlockedWritersUseFewThreads(t *testing.T) {
	const n = 200
	dir := t.TempDir()
	rings := make([]*RingBuffer, n)
	msg := bytes.Repeat([]byte{7}, 100)
	for i := range rings {
		r, err := NewRingBuffer(filepath.Join(dir, fmt.Sprintf("w%d", i)), 256, true)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for {
			if ok, _ := r.WriteMsg(msg); !ok {
				break
			}
		}
		rings[i] = r
	}
	before := osThreads(t)
	var done sync.WaitGroup
	errs := make([]error, n)
	done.Add(n)
	for i := range rings {
		go func(i int) {
			defer done.Done()
			errs[i] = rings[i].WriteMsgContext(context.Background(), msg)
		}(i)
	}
	time.Sleep(300 * time.Millisecond)
	for _, r := range rings {
		if _, err := r.ReadMsg(); err != nil {
			t.Fatal(err)
		}
	}
	done.Wait()
	for i := range rings {
		if errs[i] != nil {
			t.Fatalf("ring %d: %v", i, errs[i])
		}
	}
	if after := osThreads(t); after-before > n/4 {
		t.Fatalf("%d OS threads for %d blocked writers (%d before)", after, n, before)
	}
}

// Cancelling a parked read returns the context's error, consumes nothing,
// and leaves the ring usable at once, many times over.
func TestCancelParkedReadLeavesRingUsable(t *testing.T) {
	r, _ := newTestRing(t, 4096)
	for i := 0; i < 50; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		res := make(chan error, 1)
		go func() {
			_, err := r.ReadMsgContext(ctx)
			res <- err
		}()
		time.Sleep(time.Millisecond)
		cancel()
		if err := <-res; !errors.Is(err, context.Canceled) {
			t.Fatalf("round %d: %v, want context.Canceled", i, err)
		}
		want := []byte(fmt.Sprintf("after %d", i))
		if _, err := r.WriteMsg(want); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadMsgContext(context.Background())
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("round %d: %q, %v", i, got, err)
		}
	}
}

// An idle goroutine parked on an empty ring for 2 s: the process uses well
// under 2% of a core (the 1 s bound's wake-ups and the runtime's own).
func TestIdleParkedReaderUsesNoCPU(t *testing.T) {
	r, _ := newTestRing(t, 4096)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	start := time.Now()
	_, err := r.ReadMsgContext(ctx)
	wall := time.Since(start)
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v, want DeadlineExceeded", err)
	}
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	t.Logf("CPU %v over %v", cpu, wall)
	if cpu*50 > wall {
		t.Fatalf("CPU %v over %v: more than 2%%", cpu, wall)
	}
}

// Subscribers blocked in ReadMsgContext park on doorbells of their own: one
// write wakes every one of them.
func TestBlockedSubscribersAreAllWoken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "feed.ring")
	feed, err := CreateRingBuffer(path, 4096, CreateOptions{FanOut: true})
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	const n = 8
	got := make(chan string, n)
	for i := 0; i < n; i++ {
		sub, err := Subscribe(path, SubscribeOptions{Lossy: i%2 == 1})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		go func() {
			msg, err := sub.ReadMsgContext(context.Background())
			if err != nil {
				got <- err.Error()
				return
			}
			got <- string(msg)
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := feed.WriteMsg([]byte("all")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if msg := <-got; msg != "all" {
			t.Fatalf("subscriber got %q", msg)
		}
	}
}
