package ringbuffer

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestHoldReleaseThrough(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hold.ring")
	r, err := NewRingBuffer(path, 1024, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"m1", "m2", "m3"} {
		if _, err := r.WriteMsg([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.ReleaseThrough(0); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("ReleaseThrough before Hold: %v", err)
	}
	if err := r.Hold(true); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	lengths := make([]int, 8)
	positions := make([]uint64, 8)
	if _, err := r.ReadBatchAt(buf, lengths, positions[:4]); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("short positions: %v", err)
	}
	n, err := r.ReadBatchAt(buf, lengths, positions)
	if err != nil || n != 3 || string(buf[:6]) != "m1m2m3" {
		t.Fatalf("ReadBatchAt = %d, %v, %q", n, err, buf[:6])
	}
	if positions[0] != 0 || positions[1] != 32 || positions[2] != 64 {
		t.Fatalf("positions %v", positions[:3])
	}
	if err := r.ReleaseThrough(32); err != nil {
		t.Fatal(err)
	}
	if err := r.ReleaseThrough(32); !errors.Is(err, ErrStale) {
		t.Fatalf("second release: %v", err)
	}
	s, err := r.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.ConsumerPosition != 64 || s.MessagesRead != 2 || s.Salt&1 != 1 {
		t.Fatalf("stats %+v", s)
	}
	// Closed holding m3: the next consumer reads it again.
	r.Close()
	r, err = OpenRingBuffer(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if s2, _ := r.Stats(); s2.Salt != s.Salt || !s2.Created.Equal(s.Created) {
		t.Fatalf("identity changed: %+v", s2)
	}
	msg, err := r.ReadMsg()
	if err != nil || string(msg) != "m3" {
		t.Fatalf("after reopen: %q, %v", msg, err)
	}
}
