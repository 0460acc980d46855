package ringbuffer

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The mode is the permission bits, applied exactly whatever the umask; 0
// means 0600; any other bit is refused and nothing is created.
func TestCreateMode(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "ring.mrb")
	for mode, want := range map[fs.FileMode]fs.FileMode{0: 0o600, 0o640: 0o640, 0o777: 0o777, 0o001: 0o001} {
		r, err := CreateRingBuffer(path, 1024, CreateOptions{Remove: true, Mode: mode})
		if err != nil {
			t.Fatalf("mode %v: %v", mode, err)
		}
		r.Close()
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode(); got != want {
			t.Fatalf("created with mode %v: file has %v, want %v", mode, got, want)
		}
	}
	if _, err := NewRingBuffer(path, 1024, true); err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(path); info.Mode() != 0o600 {
		t.Fatalf("NewRingBuffer: mode %v, want 0600", info.Mode())
	}
	os.Remove(path)
	for _, mode := range []fs.FileMode{fs.ModeSetuid | 0o600, fs.ModeSetgid | 0o600, fs.ModeSticky | 0o600, fs.ModeDir | 0o700} {
		r, err := CreateRingBuffer(path, 1024, CreateOptions{Mode: mode})
		if r != nil {
			t.Fatalf("mode %v: created a ring", mode)
		}
		wantError(t, err, ErrInvalidArgument, "create", path)
		want := "ringbuffer: create " + path + ": invalid mode " + mode.String() +
			" (want permission bits 0..0777; 0 means 0600)"
		if err.Error() != want {
			t.Fatalf("message %q, want %q", err.Error(), want)
		}
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("mode %v left a file: %v", mode, err)
		}
	}
}

func TestCreateExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ring.mrb")
	r, err := CreateRingBuffer(path, 1024, CreateOptions{Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	_, err = CreateRingBuffer(path, 1024, CreateOptions{Exclusive: true})
	wantError(t, err, ErrExists, "create", path)
	_, err = CreateRingBuffer(path, 1024, CreateOptions{Exclusive: true, Remove: true})
	wantError(t, err, ErrInvalidArgument, "create", path)
	if want := "ringbuffer: create " + path + ": Remove and Exclusive exclude each other"; err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}
}

// A RingBuffer that was never opened behaves as a closed one.
func TestZeroValueRingBufferIsClosed(t *testing.T) {
	var r RingBuffer
	if ok, err := r.WriteMsg([]byte("x")); ok || err != ErrClosed {
		t.Fatalf("WriteMsg = %v, %v; want false, ErrClosed", ok, err)
	}
	if _, err := r.ReadMsg(); err != ErrClosed {
		t.Fatalf("ReadMsg: %v, want ErrClosed", err)
	}
	if _, err := r.ReadMsgInto(make([]byte, 16)); err != ErrClosed {
		t.Fatalf("ReadMsgInto: %v, want ErrClosed", err)
	}
	if _, err := r.WriteBatch([][]byte{[]byte("x")}); err != ErrClosed {
		t.Fatalf("WriteBatch: %v, want ErrClosed", err)
	}
	if _, err := r.ReadBatch(4); err != ErrClosed {
		t.Fatalf("ReadBatch: %v, want ErrClosed", err)
	}
	if _, err := r.Stats(); err != ErrClosed {
		t.Fatalf("Stats: %v, want ErrClosed", err)
	}
	if err := r.Close(); err != ErrClosed {
		t.Fatalf("Close: %v, want ErrClosed", err)
	}
	if r.Capacity() != 0 || r.MaxMessageSize() != 0 {
		t.Fatalf("Capacity %d, MaxMessageSize %d; want 0, 0", r.Capacity(), r.MaxMessageSize())
	}
	if h, tl := r.GetHeadTail(); h != 0 || tl != 0 {
		t.Fatalf("GetHeadTail = %d, %d; want 0, 0", h, tl)
	}
}

func TestGetHeadTail(t *testing.T) {
	r, _ := newTestRing(t, 4096)
	if h, tl := r.GetHeadTail(); h != 0 || tl != 0 {
		t.Fatalf("empty ring: GetHeadTail = %d, %d; want 0, 0", h, tl)
	}
	// 5 and 20 bytes: records of 32 and 48 bytes (16-byte header, aligned).
	r.WriteMsg([]byte("alpha"))
	r.WriteMsg([]byte("01234567890123456789"))
	if h, tl := r.GetHeadTail(); h != 80 || tl != 0 {
		t.Fatalf("two messages: GetHeadTail = %d, %d; want 80, 0", h, tl)
	}
	r.ReadMsg()
	if h, tl := r.GetHeadTail(); h != 80 || tl != 32 {
		t.Fatalf("after one read: GetHeadTail = %d, %d; want 80, 32", h, tl)
	}
	r.ReadMsg()
	if h, tl := r.GetHeadTail(); h != tl {
		t.Fatalf("drained: GetHeadTail = %d, %d; want equal", h, tl)
	}
	r.Close()
	if h, tl := r.GetHeadTail(); h != 0 || tl != 0 {
		t.Fatalf("closed: GetHeadTail = %d, %d; want 0, 0", h, tl)
	}
}

// Version is the one version number, defined by the MRB_VERSION_* macros of
// mrb.h (the package's copy of core/include/mrb/mrb.h).
func TestVersion(t *testing.T) {
	header, err := os.ReadFile("mrb.h")
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, name := range []string{"MAJOR", "MINOR", "PATCH"} {
		m := regexp.MustCompile(`(?m)^#define MRB_VERSION_` + name + ` +(\d+)$`).FindSubmatch(header)
		if m == nil {
			t.Fatalf("mrb.h defines no MRB_VERSION_%s", name)
		}
		parts = append(parts, string(m[1]))
	}
	if want := strings.Join(parts, "."); Version() != want {
		t.Fatalf("Version() = %q, want %q", Version(), want)
	}
	// The changelog has a section for it (skipped outside the repository).
	changelog, err := os.ReadFile("../../CHANGELOG.md")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("no ../../CHANGELOG.md here")
	}
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^## ` + regexp.QuoteMeta(Version()) + `\b`).Match(changelog) {
		t.Fatalf("CHANGELOG.md has no section for %s", Version())
	}
}

// The literal values go doc shows are the core's.
func TestLiteralsMatchCore(t *testing.T) {
	if bad := literalMismatches(); len(bad) != 0 {
		t.Fatalf("literals differ from the core:\n%s", strings.Join(bad, "\n"))
	}
	if len(coreCodes) != len(sentinels) {
		t.Fatalf("%d sentinels checked, %d registered", len(coreCodes), len(sentinels))
	}
	if strconv.FormatInt(MaxCapacity, 10) != "1099511627776" {
		t.Fatalf("MaxCapacity %d", MaxCapacity)
	}
}
