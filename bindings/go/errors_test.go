package ringbuffer

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// wantError checks err against a sentinel both ways a caller might, and,
// when it wraps detail, its operation, path and code.
func wantError(t *testing.T, err error, sentinel *Error, op, path string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %v does not match %v", err, sentinel)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.Code != sentinel.Code || e.Op != op || e.Path != path {
		t.Fatalf("error %#v: want code %d, op %q, path %q", e, sentinel.Code, op, path)
	}
}

func TestSentinelsAreDistinctCoreCodes(t *testing.T) {
	all := []*Error{
		ErrBufferFull, ErrInvalidSize, ErrBufferEmpty, ErrClosed, ErrBadFormat,
		ErrVersion, ErrConsumerBusy, ErrCorrupt, ErrInvalidArgument, ErrTimeout,
		ErrBufferTooSmall, ErrInterrupted, ErrExists, ErrStale, ErrForked,
		ErrNoSlot, ErrForeign, ErrNoSubscriberSlot, ErrLapped, ErrMode, ErrNameBusy, ErrNoWorkerSlot,
	}
	seen := map[int]bool{}
	for _, s := range all {
		if s.Code > minCoreCode || seen[s.Code] {
			t.Fatalf("%v: code %d is not a distinct core code", s, s.Code)
		}
		seen[s.Code] = true
		if !strings.HasPrefix(s.Error(), "ringbuffer: ") || len(s.Error()) <= len("ringbuffer: ") {
			t.Fatalf("sentinel message %q", s.Error())
		}
		if errors.Is(s, ErrIO) {
			t.Fatalf("%v matches ErrIO", s)
		}
	}
	if ErrBufferFull.Code != -1001 || ErrStale.Code != -1014 {
		t.Fatalf("codes differ from mrb.h: full %d, stale %d", ErrBufferFull.Code, ErrStale.Code)
	}
}

func TestCreateInvalidSizes(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{-1, 0, int(MaxCapacity) + 1} {
		path := filepath.Join(dir, "ring.mrb")
		r, err := NewRingBuffer(path, size, true)
		if r != nil {
			t.Fatalf("NewRingBuffer(size %d) returned a ring", size)
		}
		wantError(t, err, ErrInvalidArgument, "create", path)
		if !errors.Is(err, ErrInvalidSize) {
			t.Fatalf("NewRingBuffer(size %d): %v does not match ErrInvalidSize", size, err)
		}
		if want := "ringbuffer: create " + path + ": invalid ring size " + strconv.Itoa(size) + " (want 1..1099511627776)"; err.Error() != want {
			t.Fatalf("message %q, want %q", err.Error(), want)
		}
		if _, statErr := os.Lstat(path); !errors.Is(statErr, fs.ErrNotExist) {
			t.Fatalf("NewRingBuffer(size %d) left a file: %v", size, statErr)
		}
	}
}

func TestSizeIsRoundedUpToAPowerOfTwo(t *testing.T) {
	for size, want := range map[int]int{1: 256, 256: 256, 257: 512, 5000: 8192} {
		r, _ := newTestRing(t, size)
		if got := r.Capacity(); got != want {
			t.Fatalf("Capacity() of a %d-byte ring = %d, want %d", size, got, want)
		}
		if got := r.MaxMessageSize(); got != want/2 {
			t.Fatalf("MaxMessageSize() of a %d-byte ring = %d, want %d", size, got, want/2)
		}
	}
}

func TestPathWithNulIsInvalid(t *testing.T) {
	_, err := NewRingBuffer("ring\x00.mrb", 4096, true)
	wantError(t, err, ErrInvalidArgument, "create", "ring\x00.mrb")
	if errors.Is(err, ErrInvalidSize) {
		t.Fatalf("a NUL in the path reported as a size error: %v", err)
	}
	_, err = OpenRingBuffer("ring\x00.mrb")
	wantError(t, err, ErrInvalidArgument, "open", "ring\x00.mrb")
}

func TestOperatingSystemErrorsWrapErrno(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-dir", "ring.mrb")
	for op, open := range map[string]func() (*RingBuffer, error){
		"create": func() (*RingBuffer, error) { return NewRingBuffer(missing, 4096, true) },
		"open":   func() (*RingBuffer, error) { return OpenRingBuffer(missing) },
	} {
		r, err := open()
		if r != nil {
			t.Fatalf("%s of a missing path returned a ring", op)
		}
		if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, syscall.ENOENT) || !errors.Is(err, ErrIO) {
			t.Fatalf("%s of a missing path: %v; want fs.ErrNotExist, ENOENT and ErrIO", op, err)
		}
		var e *Error
		if !errors.As(err, &e) || e.Code != -int(syscall.ENOENT) || e.Op != op || e.Path != missing {
			t.Fatalf("%s of a missing path: %#v", op, err)
		}
		if errors.Is(err, ErrBadFormat) {
			t.Fatalf("%s: ENOENT matches ErrBadFormat", op)
		}
		if want := "ringbuffer: " + op + " " + missing + ": no such file or directory"; err.Error() != want {
			t.Fatalf("message %q, want %q", err.Error(), want)
		}
	}
}

func TestOpenRefusesSymlinks(t *testing.T) {
	_, path := newTestRing(t, 4096)
	link := filepath.Join(t.TempDir(), "link.mrb")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	_, err := OpenRingBuffer(link)
	if !errors.Is(err, syscall.ELOOP) || !errors.Is(err, ErrIO) {
		t.Fatalf("OpenRingBuffer(symlink): %v; want ELOOP", err)
	}
}

func TestOpenRejectsForeignFiles(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string][]byte{
		"empty":     nil,
		"short":     []byte("MMAPRBUF"),
		"text":      []byte(strings.Repeat("not a ring\n", 1000)),
		"zeros-8k":  make([]byte, 8192),
		"directory": nil,
	} {
		path := filepath.Join(dir, name)
		var err error
		if name == "directory" {
			err = os.Mkdir(path, 0o700)
		} else {
			err = os.WriteFile(path, content, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
		_, err = OpenRingBuffer(path)
		if name == "directory" {
			// open(2) of a directory for writing fails with EISDIR.
			if !errors.Is(err, syscall.EISDIR) {
				t.Fatalf("OpenRingBuffer(directory): %v; want EISDIR", err)
			}
			continue
		}
		wantError(t, err, ErrBadFormat, "open", path)
		// Without remove, NewRingBuffer leaves a foreign file alone.
		_, err = NewRingBuffer(path, 4096, false)
		wantError(t, err, ErrBadFormat, "create", path)
		if got, _ := os.ReadFile(path); string(got) != string(content) {
			t.Fatalf("NewRingBuffer(remove=false) modified foreign file %s", name)
		}
	}
}

// Header fields at the offsets docs/FORMAT.md specifies.
const (
	formatVersionOffset    = 0x008
	producerPositionOffset = 0x080
)

func patchRingFile(t *testing.T, path string, offset int64, value []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(value, offset); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRejectsOtherVersions(t *testing.T) {
	r, path := newTestRing(t, 4096)
	r.Close()
	for _, version := range []uint32{1, 3} {
		patchRingFile(t, path, formatVersionOffset, binary.LittleEndian.AppendUint32(nil, version))
		_, err := OpenRingBuffer(path)
		wantError(t, err, ErrVersion, "open", path)
	}
}

func TestOpenRejectsCorruptPositions(t *testing.T) {
	r, path := newTestRing(t, 4096)
	r.Close()
	// The producer four laps ahead of the consumer: impossible.
	patchRingFile(t, path, producerPositionOffset, binary.LittleEndian.AppendUint64(nil, 4*4096))
	_, err := OpenRingBuffer(path)
	wantError(t, err, ErrCorrupt, "open", path)
}

func TestCreateWithoutRemoveRefusesAnotherSize(t *testing.T) {
	_, path := newTestRing(t, 4096)
	_, err := NewRingBuffer(path, 8192, false)
	wantError(t, err, ErrExists, "create", path)
	// The same size (after rounding) opens the existing ring.
	again, err := NewRingBuffer(path, 4000, false)
	if err != nil {
		t.Fatalf("NewRingBuffer(same size, remove=false): %v", err)
	}
	again.Close()
}

func TestWriteInvalidSizes(t *testing.T) {
	r, _ := newTestRing(t, 4096)
	for _, msg := range [][]byte{nil, {}, make([]byte, 2049), make([]byte, 1<<20)} {
		ok, err := r.WriteMsg(msg)
		if ok || err != ErrInvalidSize {
			t.Fatalf("WriteMsg(%d bytes) = %v, %v; want false, ErrInvalidSize", len(msg), ok, err)
		}
	}
	if n, err := r.WriteBatch([][]byte{{}}); n != 0 || err != ErrInvalidSize {
		t.Fatalf("WriteBatch(empty message) = %d, %v; want 0, ErrInvalidSize", n, err)
	}
	if n, err := r.WriteBatch([][]byte{[]byte("ok"), make([]byte, 4000), []byte("never")}); n != 1 || err != ErrInvalidSize {
		t.Fatalf("WriteBatch(ok, too big, ...) = %d, %v; want 1, ErrInvalidSize", n, err)
	}
	if _, err := r.ReadMsg(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadMsg(); err != ErrBufferEmpty {
		t.Fatalf("ReadMsg after a failed write: %v; want ErrBufferEmpty", err)
	}
}

func TestReadIntoTooSmallConsumesNothing(t *testing.T) {
	r, _ := newTestRing(t, 4096)
	if _, err := r.WriteMsg([]byte("twelve bytes")); err != nil {
		t.Fatal(err)
	}
	for _, dst := range [][]byte{nil, make([]byte, 11)} {
		n, err := r.ReadMsgInto(dst)
		if err != ErrBufferTooSmall || n != 12 {
			t.Fatalf("ReadMsgInto(%d bytes) = %d, %v; want 12, ErrBufferTooSmall", len(dst), n, err)
		}
	}
	lengths := make([]int, 4)
	if n, err := r.ReadBatchInto(make([]byte, 5), lengths); n != 0 || err != ErrBufferTooSmall || lengths[0] != 12 {
		t.Fatalf("ReadBatchInto(5 bytes) = %d, %v, lengths[0] %d; want 0, ErrBufferTooSmall, 12", n, err, lengths[0])
	}
	dst := make([]byte, 12)
	if n, err := r.ReadMsgInto(dst); n != 12 || err != nil || string(dst) != "twelve bytes" {
		t.Fatalf("ReadMsgInto(12 bytes) = %d, %v, %q", n, err, dst)
	}
}

func TestBatchArgumentErrors(t *testing.T) {
	r, _ := newTestRing(t, 4096)
	if _, err := r.ReadBatch(0); err != ErrInvalidArgument {
		t.Fatalf("ReadBatch(0): %v; want ErrInvalidArgument", err)
	}
	if _, err := r.ReadBatchInto(make([]byte, 10), nil); err != ErrInvalidArgument {
		t.Fatalf("ReadBatchInto(no lengths): %v; want ErrInvalidArgument", err)
	}
	if n, err := r.WriteBatch(nil); n != 0 || err != nil {
		t.Fatalf("WriteBatch(nil) = %d, %v; want 0, nil", n, err)
	}
	if _, err := r.ReadBatch(10); err != ErrBufferEmpty {
		t.Fatalf("ReadBatch on an empty ring: %v; want ErrBufferEmpty", err)
	}
	if _, err := r.ReadBatchInto(make([]byte, 10), make([]int, 2)); err != ErrBufferEmpty {
		t.Fatalf("ReadBatchInto on an empty ring: %v; want ErrBufferEmpty", err)
	}
}

func TestSecondConsumerIsBusy(t *testing.T) {
	first, path := newTestRing(t, 4096)
	second, err := OpenRingBuffer(path)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if _, err := first.WriteMsg([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if msg, err := first.ReadMsg(); err != nil || string(msg) != "a" {
		t.Fatalf("first.ReadMsg = %q, %v", msg, err)
	}
	// The second handle may still write and inspect, but not read.
	if _, err := second.WriteMsg([]byte("b")); err != nil {
		t.Fatal(err)
	}
	if _, err := second.ReadMsg(); err != ErrConsumerBusy {
		t.Fatalf("second.ReadMsg: %v; want ErrConsumerBusy", err)
	}
	if _, err := second.ReadMsgInto(make([]byte, 10)); err != ErrConsumerBusy {
		t.Fatalf("second.ReadMsgInto: %v; want ErrConsumerBusy", err)
	}
	if _, err := second.ReadBatch(4); err != ErrConsumerBusy {
		t.Fatalf("second.ReadBatch: %v; want ErrConsumerBusy", err)
	}
	if s, err := second.Stats(); err != nil || s.MessagesWritten != 2 || s.MessagesRead != 1 {
		t.Fatalf("second.Stats() = %+v, %v", s, err)
	}
	// Closing the consumer hands the role over.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if msg, err := second.ReadMsg(); err != nil || string(msg) != "b" {
		t.Fatalf("second.ReadMsg after first closed = %q, %v", msg, err)
	}
}

func TestEverythingAfterCloseIsErrClosed(t *testing.T) {
	r, _ := newTestRing(t, 4096)
	if _, err := r.WriteMsg([]byte("unread")); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.Close(); err != ErrClosed {
		t.Fatalf("second Close: %v; want ErrClosed", err)
	}
	if ok, err := r.WriteMsg([]byte("x")); ok || err != ErrClosed {
		t.Fatalf("WriteMsg after Close = %v, %v", ok, err)
	}
	if _, err := r.ReadMsg(); err != ErrClosed {
		t.Fatalf("ReadMsg after Close: %v", err)
	}
	if _, err := r.ReadMsgInto(make([]byte, 10)); err != ErrClosed {
		t.Fatalf("ReadMsgInto after Close: %v", err)
	}
	if _, err := r.WriteBatch([][]byte{[]byte("x")}); err != ErrClosed {
		t.Fatalf("WriteBatch after Close: %v", err)
	}
	if _, err := r.ReadBatch(2); err != ErrClosed {
		t.Fatalf("ReadBatch after Close: %v", err)
	}
	if _, err := r.ReadBatchInto(make([]byte, 10), make([]int, 2)); err != ErrClosed {
		t.Fatalf("ReadBatchInto after Close: %v", err)
	}
	if _, err := r.Stats(); err != ErrClosed {
		t.Fatalf("Stats after Close: %v", err)
	}
	if r.Capacity() != 0 || r.MaxMessageSize() != 0 {
		t.Fatalf("Capacity, MaxMessageSize after Close = %d, %d; want 0, 0", r.Capacity(), r.MaxMessageSize())
	}
}
