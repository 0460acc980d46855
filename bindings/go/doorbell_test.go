package ringbuffer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// epollOn returns an epoll instance watching fd for input, closed at the
// end of the test.
func epollOn(t *testing.T, fd int) int {
	t.Helper()
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(ep) })
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
	if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		t.Fatal(err)
	}
	return ep
}

// epollWait is syscall.EpollWait retried on EINTR: the number of events.
func epollWait(t *testing.T, ep int, timeout time.Duration) int {
	t.Helper()
	events := make([]syscall.EpollEvent, 4)
	for {
		n, err := syscall.EpollWait(ep, events, int(timeout.Milliseconds()))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// A reader waiting with raw syscall.EpollWait on the exported doorbell (the
// documented drain, ArmRead, wait loop), fed by two producer processes
// writing into a small ring: every message arrives once, intact, in each
// producer's order.
func TestEpollWaitOnExportedDoorbell(t *testing.T) {
	const producers = 2
	perProducer := scaled(20000)
	r, path := newTestRing(t, 16<<10)
	fd, err := r.DoorbellFd(DoorbellRead)
	if err != nil {
		t.Fatal(err)
	}
	ep := epollOn(t, fd)
	if _, err := r.ReadMsg(); err != ErrBufferEmpty { // become the consumer first
		t.Fatalf("ReadMsg on the new ring: %v", err)
	}
	exited := make(chan error, producers)
	for w := 1; w <= producers; w++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(),
			producerPathEnv+"="+filepath.Clean(path),
			producerWriterEnv+"="+strconv.Itoa(w),
			producerCountEnv+"="+strconv.Itoa(perProducer))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func(w int) {
			err := cmd.Wait()
			if err != nil {
				err = fmt.Errorf("producer %d: %v", w, err)
			}
			exited <- err
		}(w)
	}
	checker := newSequenceChecker(crossProcessMaxBody)
	received, waits, rung := 0, 0, 0
	deadline := time.Now().Add(2 * time.Minute)
	for received < producers*perProducer {
		for {
			msg, err := r.ReadMsg()
			if err == ErrBufferEmpty {
				break
			}
			if err != nil {
				t.Fatalf("ReadMsg after %d messages: %v", received, err)
			}
			if err := checker.check(msg); err != nil {
				t.Fatalf("message %d: %v", received, err)
			}
			received++
		}
		if received == producers*perProducer {
			break
		}
		ready, wait, err := r.ArmRead()
		if err != nil {
			t.Fatal(err)
		}
		if ready {
			continue
		}
		if wait <= 0 || wait > time.Second {
			t.Fatalf("ArmRead: wait %v", wait)
		}
		if time.Now().After(deadline) {
			select {
			case err := <-exited:
				t.Fatalf("%d of %d messages; %v", received, producers*perProducer, err)
			default:
				t.Fatalf("%d of %d messages", received, producers*perProducer)
			}
		}
		waits++
		rung += epollWait(t, ep, wait)
	}
	for i := 0; i < producers; i++ {
		if err := <-exited; err != nil {
			t.Fatal(err)
		}
	}
	for w := uint32(1); w <= producers; w++ {
		if got := checker.next[w]; got != uint64(perProducer) {
			t.Fatalf("producer %d: %d messages, want %d", w, got, perProducer)
		}
	}
	if _, err := r.ReadMsg(); err != ErrBufferEmpty {
		t.Fatalf("ReadMsg after all: %v; want ErrBufferEmpty", err)
	}
	t.Logf("%d messages, %d epoll waits, %d woken by the doorbell", received, waits, rung)
	if waits == 0 {
		t.Fatal("the reader never waited: the test did not test the doorbell")
	}
}

// The calls one by one: an empty ring arms (a 1 s bound), a write rings the
// descriptor, the next ArmRead drains it and reports ready; Disarm withdraws
// an armed doorbell (a later write does not ring it); a full ring arms the
// write side and a read rings it; bad sides and closed handles are errors.
func TestDoorbellCalls(t *testing.T) {
	r, _ := newTestRing(t, 4096)
	fd, err := r.DoorbellFd(DoorbellRead)
	if err != nil || fd < 0 {
		t.Fatalf("DoorbellFd: %d, %v", fd, err)
	}
	if again, _ := r.DoorbellFd(DoorbellRead); again != fd {
		t.Fatalf("DoorbellFd: %d, then %d", fd, again)
	}
	ep := epollOn(t, fd)

	ready, wait, err := r.ArmRead()
	if ready || wait != time.Second || err != nil {
		t.Fatalf("ArmRead on an empty ring: %v, %v, %v", ready, wait, err)
	}
	if n := epollWait(t, ep, 0); n != 0 {
		t.Fatalf("armed, nothing written: %d events", n)
	}
	if _, err := r.WriteMsg([]byte("one")); err != nil {
		t.Fatal(err)
	}
	if n := epollWait(t, ep, 10*time.Second); n != 1 {
		t.Fatalf("written: %d events", n)
	}
	if ready, _, err := r.ArmRead(); !ready || err != nil {
		t.Fatalf("ArmRead with a message: %v, %v", ready, err)
	}
	if n := epollWait(t, ep, 0); n != 0 {
		t.Fatalf("ArmRead did not drain the doorbell: %d events", n)
	}
	if msg, err := r.ReadMsg(); err != nil || string(msg) != "one" {
		t.Fatalf("ReadMsg: %q, %v", msg, err)
	}

	// Disarmed: a write no longer rings.
	if ready, _, err := r.ArmRead(); ready || err != nil {
		t.Fatalf("ArmRead: %v, %v", ready, err)
	}
	if err := r.Disarm(DoorbellRead); err != nil {
		t.Fatal(err)
	}
	if err := r.Disarm(DoorbellRead); err != nil {
		t.Fatalf("Disarm twice: %v", err)
	}
	if _, err := r.WriteMsg([]byte("two")); err != nil {
		t.Fatal(err)
	}
	if n := epollWait(t, ep, 50*time.Millisecond); n != 0 {
		t.Fatalf("disarmed, written: %d events", n)
	}
	if ready, _, err := r.ArmRead(); !ready || err != nil {
		t.Fatalf("ArmRead with a message: %v, %v", ready, err)
	}
	if msg, err := r.ReadMsg(); err != nil || string(msg) != "two" {
		t.Fatalf("ReadMsg: %q, %v", msg, err)
	}

	// The write side.
	wfd, err := r.DoorbellFd(DoorbellWrite)
	if err != nil || wfd == fd {
		t.Fatalf("DoorbellFd(DoorbellWrite): %d (read: %d), %v", wfd, fd, err)
	}
	wep := epollOn(t, wfd)
	msg := bytes.Repeat([]byte{7}, 100)
	for {
		if ok, _ := r.WriteMsg(msg); !ok {
			break
		}
	}
	if ready, wait, err := r.ArmWrite(len(msg)); ready || wait != time.Second || err != nil {
		t.Fatalf("ArmWrite on a full ring: %v, %v, %v", ready, wait, err)
	}
	if _, err := r.ReadMsg(); err != nil {
		t.Fatal(err)
	}
	if n := epollWait(t, wep, 10*time.Second); n != 1 {
		t.Fatalf("read from a full ring: %d events", n)
	}
	if ready, _, err := r.ArmWrite(len(msg)); !ready || err != nil {
		t.Fatalf("ArmWrite with room: %v, %v", ready, err)
	}
	if _, _, err := r.ArmWrite(r.MaxMessageSize() + 1); err != ErrInvalidSize {
		t.Fatalf("ArmWrite(too big): %v, want ErrInvalidSize", err)
	}
	if _, _, err := r.ArmWrite(0); err != ErrInvalidSize {
		t.Fatalf("ArmWrite(0): %v, want ErrInvalidSize", err)
	}

	if _, err := r.DoorbellFd(2); err != ErrInvalidArgument {
		t.Fatalf("DoorbellFd(2): %v", err)
	}
	if err := r.Disarm(-1); err != ErrInvalidArgument {
		t.Fatalf("Disarm(-1): %v", err)
	}
	syscall.EpollCtl(ep, syscall.EPOLL_CTL_DEL, fd, nil)
	syscall.EpollCtl(wep, syscall.EPOLL_CTL_DEL, wfd, nil)
	r.Close()
	if _, err := r.DoorbellFd(DoorbellRead); err != ErrClosed {
		t.Fatalf("DoorbellFd after Close: %v", err)
	}
	if _, _, err := r.ArmRead(); err != ErrClosed {
		t.Fatalf("ArmRead after Close: %v", err)
	}
	if err := r.Disarm(DoorbellRead); err != ErrClosed {
		t.Fatalf("Disarm after Close: %v", err)
	}
	var zero RingBuffer
	if _, err := zero.DoorbellFd(DoorbellRead); err != ErrClosed {
		t.Fatalf("DoorbellFd of a zero RingBuffer: %v", err)
	}
}

// A subscriber has a doorbell of its own, rung by a write to the feed.
func TestSubscriberDoorbell(t *testing.T) {
	path := filepath.Join(t.TempDir(), "feed.ring")
	feed, err := CreateRingBuffer(path, 4096, CreateOptions{FanOut: true})
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	sub, err := Subscribe(path, SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	fd, err := sub.DoorbellFd(DoorbellRead)
	if err != nil {
		t.Fatal(err)
	}
	if ffd, _ := feed.DoorbellFd(DoorbellRead); ffd == fd {
		t.Fatalf("the subscriber shares the feed's doorbell %d", fd)
	}
	ep := epollOn(t, fd)
	if ready, _, err := sub.ArmRead(); ready || err != nil {
		t.Fatalf("ArmRead: %v, %v", ready, err)
	}
	if _, err := feed.WriteMsg([]byte("all")); err != nil {
		t.Fatal(err)
	}
	if n := epollWait(t, ep, 10*time.Second); n != 1 {
		t.Fatalf("written: %d events", n)
	}
	if ready, _, err := sub.ArmRead(); !ready || err != nil {
		t.Fatalf("ArmRead: %v, %v", ready, err)
	}
	if msg, err := sub.ReadMsgContext(context.Background()); err != nil || string(msg) != "all" {
		t.Fatalf("ReadMsgContext: %q, %v", msg, err)
	}
	// A plain handle of a fan-out ring is no consumer.
	if _, _, err := feed.ArmRead(); !errors.Is(err, ErrMode) {
		t.Fatalf("ArmRead on the feed: %v, want ErrMode", err)
	}
}
