package ringbuffer

import (
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"testing"
	"time"
)

// Worker groups through the Go API, with core/test/workers_test.cc's exact
// figures: 40-byte messages take 64-byte records.

func workerSeqs(t *testing.T, batch [][]byte) []uint64 {
	t.Helper()
	var out []uint64
	for _, m := range batch {
		out = append(out, binary.LittleEndian.Uint64(m))
	}
	return out
}

func TestWorkersShareMessagesInClaimOrder(t *testing.T) {
	r, path := newFanOutRing(t, 4096)
	a, err := JoinWorker(path, "jobs", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := JoinWorker(path, "jobs", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := uint64(0); i < 6; i++ {
		if ok, err := r.WriteMsg(subMsg(i, 40)); err != nil || !ok {
			t.Fatal(ok, err)
		}
	}
	batch, err := a.ReadBatch(3)
	if err != nil || len(batch) != 3 || workerSeqs(t, batch)[2] != 2 {
		t.Fatalf("a.ReadBatch(3) = %v, %v", workerSeqs(t, batch), err)
	}
	m, err := b.ReadMsg()
	if err != nil || binary.LittleEndian.Uint64(m) != 3 {
		t.Fatalf("b.ReadMsg = %v, %v", m, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for want := uint64(4); want < 6; want++ {
		m, err := b.ReadMsgContext(ctx)
		if err != nil || binary.LittleEndian.Uint64(m) != want {
			t.Fatalf("b.ReadMsgContext = %v, %v; want %d", m, err, want)
		}
	}
	if err := a.Ack(); err != nil {
		t.Fatal(err)
	}
	if err := b.Ack(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ReadMsg(); !errors.Is(err, ErrBufferEmpty) {
		t.Fatalf("a.ReadMsg on an empty group: %v", err)
	}
	groups, err := r.WorkerGroups()
	if err != nil || len(groups) != 1 {
		t.Fatalf("WorkerGroups = %v, %v", groups, err)
	}
	g := groups[0]
	if g.Name != "jobs" || g.MessagesDone != 6 || g.BytesDone != 240 || g.Workers != 2 ||
		g.AtMostOnce || g.ClaimPosition != 6*64 || g.LagBytes != 0 {
		t.Fatalf("group %+v", g)
	}
	st, err := r.Stats()
	if err != nil || st.ConsumerPosition != 6*64 {
		t.Fatalf("stats %+v, %v", st, err)
	}
}

func TestJoinWorkerErrors(t *testing.T) {
	_, path := newFanOutRing(t, 4096)
	w, err := JoinWorker(path, "jobs", &WorkerOptions{AtMostOnce: true, HoldTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := JoinWorker(path, "jobs", &WorkerOptions{}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("other options: %v", err)
	}
	if _, err := JoinWorker(path, "", nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("empty group: %v", err)
	}
	for _, g := range []string{"b", "c", "d"} {
		x, err := JoinWorker(path, g, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
	}
	if _, err := JoinWorker(path, "e", nil); !errors.Is(err, ErrNoWorkerSlot) {
		t.Fatalf("a fifth group: %v", err)
	}
	_, qpath := newTestRing(t, 4096)
	if _, err := JoinWorker(qpath, "jobs", nil); !errors.Is(err, ErrMode) {
		t.Fatalf("queue ring: %v", err)
	}
}

// RemoveWorkerGroup: refused while a live worker is in the group; then the
// group is gone, its place is free, and its unfinished messages stop
// holding producers back (40-byte messages: 64 fill the 4 KiB ring).
func TestRemoveWorkerGroup(t *testing.T) {
	r, path := newFanOutRing(t, 4096)
	w, err := JoinWorker(path, "jobs", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 64; i++ {
		if ok, err := r.WriteMsg(subMsg(i, 40)); err != nil || !ok {
			t.Fatal(i, ok, err)
		}
	}
	if _, err := w.ReadMsg(); err != nil {
		t.Fatal(err)
	}
	wantError(t, RemoveWorkerGroup(path, "jobs"), ErrNameBusy, "remove group", path)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Message 0 released by the close: room for one more, then full.
	if ok, err := r.WriteMsg(subMsg(64, 40)); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if ok, err := r.WriteMsg(subMsg(65, 40)); !errors.Is(err, ErrBufferFull) || ok {
		t.Fatalf("a full ring held by the group: %v, %v", ok, err)
	}
	if err := RemoveWorkerGroup(path, "jobs"); err != nil {
		t.Fatal(err)
	}
	err = RemoveWorkerGroup(path, "jobs")
	if !errors.Is(err, fs.ErrNotExist) || err.Error() != "ringbuffer: remove group "+path+": no such file or directory" {
		t.Fatalf("removing an unknown group: %v; want fs.ErrNotExist", err)
	}
	wantError(t, RemoveWorkerGroup(path, ""), ErrInvalidArgument, "remove group", path)
	if groups, err := r.WorkerGroups(); err != nil || len(groups) != 0 {
		t.Fatalf("WorkerGroups after the removal = %+v, %v", groups, err)
	}
	if ok, err := r.WriteMsg(subMsg(65, 40)); err != nil || !ok {
		t.Fatalf("write after the removal: %v, %v", ok, err)
	}
	_, qpath := newTestRing(t, 4096)
	wantError(t, RemoveWorkerGroup(qpath, "jobs"), ErrMode, "remove group", qpath)
}

func TestWorkerReadMsgContextWaits(t *testing.T) {
	r, path := newFanOutRing(t, 4096)
	w, err := JoinWorker(path, "jobs", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	go func() {
		time.Sleep(50 * time.Millisecond)
		r.WriteMsg(subMsg(9, 40))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := w.ReadMsgContext(ctx)
	if err != nil || binary.LittleEndian.Uint64(m) != 9 {
		t.Fatalf("ReadMsgContext = %v, %v", m, err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 60*time.Millisecond)
	defer cancel2()
	if _, err := w.ReadMsgContext(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReadMsgContext on nothing: %v", err)
	}
}
