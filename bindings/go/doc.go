// Package ringbuffer is the Go binding of mmap_ringbuffer: a many-producer,
// single-consumer message ring in a memory-mapped file, shared by
// goroutines, processes and languages (C, Go, Python) through one C library.
//
// It is a drop-in replacement for the pure-Go package
// github.com/EBWi11/mmap_ringbuffer: NewRingBuffer, OpenRingBuffer,
// WriteMsg, ReadMsg, Close and the errors ErrBufferFull, ErrInvalidSize,
// ErrBufferEmpty and ErrClosed keep their names and meanings (compare with ==
// or errors.Is), so switching needs only the import path. The file format is
// not the original's: a file written by one cannot be read by the other.
//
// # What changed from the original
//
// The original is not safe across processes: it has no memory ordering on
// the shared positions and serializes writers with a per-process mutex. It
// overwrites unread data, then panics or returns a wrong message, when
// variable-size messages leave less than a length header before the end of
// the ring (seen with a 256-byte ring, and after about 470,000 mixed-size
// messages in a 64 KiB ring, between goroutines and between processes). It
// zeroes the file even when remove is false, and its README's
// producer-consumer example never terminates.
//
// Here the C core does the work: writers in any number of goroutines and
// processes claim space lock-free; the single consumer is tracked in the
// file (a second reading handle gets ErrConsumerBusy, and a dead consumer's
// role is taken over); records never straddle the wrap point; every
// position read from the file is validated. NewRingBuffer with remove false
// opens an existing ring of the same size as it is, with its unread
// messages. Sizes are rounded up to a power of two (at least 256 bytes); a
// record takes a 16-byte header and is 16-byte aligned, and MaxMessageSize
// reports the largest message accepted (half the size, so a
// 1024-byte message does not fit a 1024-byte ring, as before). Small
// messages therefore take more room than in the original: a 256-byte ring
// holds eight 4-byte messages where the original's 4-byte length prefix let
// it hold about thirty (the header carries the stamp and writer pid that
// validation and crash recovery need); size tiny rings accordingly. New
// files get mode 0600 (the original used 0644 minus umask).
//
// # Beyond the original
//
// ReadMsgInto reads into a caller's buffer and allocates nothing.
// WriteBatch, ReadBatch and ReadBatchInto cross into C once per batch.
// ReadMsgContext, ReadMsgIntoContext (allocation-free), WriteMsgContext and
// ReadBatchContext block (on a futex in
// the shared mapping, so a write in any process wakes a reader) until ctx is
// done; they wait in C in slices of at most 50 ms and check ctx in between.
// Stats, Capacity and MaxMessageSize inspect the ring. A RingBuffer is safe
// for concurrent use by many goroutines: writes are concurrent, reads on one
// handle are serialized by a mutex, and Close may run concurrently with
// other calls (they then return ErrClosed). A RingBuffer that is dropped
// without Close is closed by a finalizer.
//
// Put ring files on a tmpfs such as /dev/shm: on a disk file system the
// kernel also writes the shared pages back to disk, which costs throughput.
//
// Errors other than the four original ones are also exported (ErrBadFormat,
// ErrVersion, ErrConsumerBusy, ErrCorrupt, ErrExists, ErrTimeout, ...). They
// are *Error values carrying the core's code; failures of NewRingBuffer and
// OpenRingBuffer are an *Error with the operation and path wrapping the
// sentinel, or wrapping a syscall.Errno for an operating-system failure, so
// errors.Is(err, fs.ErrNotExist) and errors.Is(err, ErrIO) work.
//
// # Build design
//
// The package needs cgo and a C11 compiler, and nothing else: no prebuilt
// library, no Bazel. cgo compiles every .c file in the package directory, so
// the C core is present here as generated copies, flattened: mrb.h (from
// core/include/mrb/mrb.h) and core_NAME.c / core_NAME.h (from
// core/src/NAME.*), their #include lines rewritten to the flat names.
// bindings/go/sync_core.sh produces them; never edit them by hand.
//
// Why copies: a .c file here that #includes ../../core/src/x.c builds, but
// Go's build cache hashes only the files in the package directory, so an
// edit to the included file leaves a stale cached build; symlinks would
// avoid that but Go module zips drop them, so `go get` would fail. Plain
// copies in the package directory are hashed by the cache, so an edit to a
// copy always rebuilds, and they travel in the module zip.
//
// Why the copies cannot drift from core/: `sync_core.sh --check` fails when
// any copy differs from its source, a core file has no copy, or a copy has
// no source; it runs as a Bazel test (//bindings/go:sync_check_test), and
// TestCoreCopiesInSync runs it from `go test` whenever ../../core exists.
// TestModuleZipBuild copies only this directory's regular files elsewhere
// and builds and runs a consumer module against it, as a module proxy user
// would.
package ringbuffer
