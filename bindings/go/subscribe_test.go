package ringbuffer

import (
	"path/filepath"
	"testing"
)

// Two subscribers of a fan-out ring each read every message; a named one
// that held messages (Hold) gets them again after its handle closed.
func TestSubscribeHoldNamed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fanout.ring")
	w, err := CreateRingBuffer(path, 4096, CreateOptions{FanOut: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	a, err := Subscribe(path, SubscribeOptions{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Subscribe(path, SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := Subscribe(path, SubscribeOptions{Name: "a"}); err == nil {
		t.Fatal("a second live subscriber named a was accepted")
	}
	for _, m := range []string{"m1", "m2"} {
		if _, err := w.WriteMsg([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Hold(true); err != nil {
		t.Fatal(err)
	}
	buf, lengths, positions := make([]byte, 64), make([]int, 4), make([]uint64, 4)
	n, err := a.ReadBatchAt(buf, lengths, positions)
	if err != nil || n != 2 || string(buf[:4]) != "m1m2" {
		t.Fatalf("a: %d, %v, %q", n, err, buf[:4])
	}
	if err := a.ReleaseThrough(positions[0]); err != nil {
		t.Fatal(err)
	}
	a.Close()
	for _, want := range []string{"m1", "m2"} {
		if msg, err := b.ReadMsg(); err != nil || string(msg) != want {
			t.Fatalf("b: %q, %v (want %s)", msg, err, want)
		}
	}
	a, err = Subscribe(path, SubscribeOptions{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if msg, err := a.ReadMsg(); err != nil || string(msg) != "m2" {
		t.Fatalf("a resumed with %q, %v (want m2)", msg, err)
	}
}
