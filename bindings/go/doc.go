// Package ringbuffer passes messages between goroutines, processes and
// programs written in C, Go or Python through a ring buffer in a
// memory-mapped file: any number of writers, one reader at a time,
// variable-length messages, lock-free. It is the Go binding of the
// mmap_ringbuffer C library, which cgo compiles into the package.
//
//	rb, err := ringbuffer.NewRingBuffer("/dev/shm/events.ring", 1<<20, false)
//	if err != nil {
//		return err
//	}
//	defer rb.Close()
//	rb.WriteMsg([]byte("hello"))        // any goroutine, any process
//	msg, err := rb.ReadMsgContext(ctx)  // the consumer: waits for a message
//
// # Opening a ring
//
// NewRingBuffer creates a ring file of a size rounded up to a power of two
// (at least 256 bytes), or opens an existing ring of that size as it is,
// with its unread messages; remove replaces whatever is there.
// CreateRingBuffer adds an exclusive create and the file's mode (default
// 0600). OpenRingBuffer opens an existing ring. Every file is validated
// before use. Put ring files on a tmpfs such as /dev/shm: on a disk file
// system the kernel also writes the shared pages back to disk.
//
// # Writing and reading
//
// WriteMsg copies a message into the ring, or returns ErrBufferFull at once;
// ReadMsg returns the next message in a slice of its own, or
// ErrBufferEmpty at once (a message of 1 KiB or more shares a 64 KiB block
// with the next ones: see ReadMsg). A message is 1 to MaxMessageSize bytes
// (half the capacity); each takes a 16-byte header and is 16-byte aligned.
// ReadMsgInto reads into a caller's buffer and allocates nothing.
// WriteBatch, ReadBatch and ReadBatchInto cross into C once per batch. ReadMsgContext,
// ReadMsgIntoContext, WriteMsgContext and ReadBatchContext block until ctx
// is done, parked in the runtime's netpoller on the handle's doorbell
// descriptor (a write in any process rings it): a blocked goroutine holds no
// OS thread, and cancelling ctx wakes it at once. A poller of your own
// (syscall.EpollWait, a C loop) waits on DoorbellFd with ArmRead, ArmWrite
// and Disarm instead (see ArmRead for the loop). Stats, GetHeadTail,
// Capacity and MaxMessageSize inspect the ring. Hold, ReadBatchAt and
// ReleaseThrough let a forwarder free messages only once another system has
// them (at-least-once; tools/bridge).
//
// # Subscribers
//
// A ring created with CreateOptions.FanOut is read by subscribers rather
// than by one consumer: Subscribe opens a Subscriber, a handle of its own
// (it embeds a *RingBuffer) whose read calls read its own position. A
// durable subscriber sees every message from where it joined, in order, and
// producers wait for the slowest one; a named one (SubscribeOptions.Name)
// resumes after Close or a crash right after the last message it released;
// an evictable one (Evict, EvictAfter) stops holding producers back after
// its timeout and then reports ErrLapped once. A lossy tap (Lossy, on any
// ring) never slows producers and counts what it lost. Info,
// Subscribers and IsFanOut inspect; Unsubscribe removes a named subscriber.
//
// # Worker groups
//
// A fan-out ring can also be read by worker groups, competing consumers:
// JoinWorker opens a Worker of a named group, and each message goes to one
// worker of the group (taken in claim order, finished in any order). Its
// read calls (ReadMsg, ReadBatch, ReadMsgContext, ...) release what the
// previous one returned; Ack releases without taking more. What a dead (or,
// with WorkerOptions.HoldTimeout, hung) worker held is redelivered to
// another worker or, with WorkerOptions.AtMostOnce, dropped and counted;
// WorkerGroups inspects; RemoveWorkerGroup removes a group without live
// workers for good. A worker's Context reads park in the netpoller on
// a doorbell of its own, as a RingBuffer's do.
//
// A RingBuffer is safe for concurrent use by many goroutines: writes are
// concurrent (lock-free claims in the C core), reads on one handle are
// serialized by a mutex, and Close may run concurrently with other calls
// (they then return ErrClosed). A ring has one consumer at a time across
// all processes: another handle's reads get ErrConsumerBusy while it lives,
// and a dead consumer's role is taken over. A RingBuffer that is dropped
// without Close is closed by a finalizer; a zero RingBuffer behaves as a
// closed one.
//
// # Errors
//
// Failures reported by the C core are *Error values carrying its code (the
// context variants return ctx.Err() once ctx is done). Calls on an open ring
// return the sentinels themselves (ErrBufferFull, ErrBufferEmpty, ErrClosed,
// ErrCorrupt, ...), so == works; NewRingBuffer, CreateRingBuffer and
// OpenRingBuffer return an *Error with the operation and path that wraps the
// sentinel, or a syscall.Errno for an operating-system failure: use
// errors.Is(err, ErrBadFormat), errors.Is(err, fs.ErrNotExist) or
// errors.Is(err, ErrIO).
//
// # Requirements and versions
//
// cgo (CGO_ENABLED=1, the default for native builds) and a C11 compiler on
// Linux; Go 1.21 or newer. Without cgo the build stops with the single error
// "ringbuffer needs cgo: set CGO_ENABLED=1, have a C compiler". Version
// returns the release version, one number for the C library, this module
// and the Python package; the module, in the bindings/go directory of its
// repository, is tagged bindings/go/vX.Y.Z for it (CHANGELOG.md).
//
// # Compatibility with github.com/EBWi11/mmap_ringbuffer
//
// This package is a drop-in replacement for the pure-Go package
// github.com/EBWi11/mmap_ringbuffer: NewRingBuffer, OpenRingBuffer,
// WriteMsg, ReadMsg, GetHeadTail, Close and the errors ErrBufferFull,
// ErrInvalidSize, ErrBufferEmpty and ErrClosed keep their names and
// meanings (compare with == or errors.Is), so switching needs only the
// import path. GetHeadTail returns the positions as byte counts since the
// ring was created (their low 32 bits), not offsets into the file. The file
// format is not the original's: a file written by one cannot be read by the
// other.
//
// The original is not safe across processes: it has no memory ordering on
// the shared positions and serializes writers with a per-process mutex. It
// overwrites unread data, then panics or returns a wrong message, when
// variable-size messages leave less than a length header before the end of
// the ring (seen with a 256-byte ring, and after about 470,000 mixed-size
// messages in a 64 KiB ring, between goroutines and between processes). It
// zeroes the file even when remove is false, and its README's
// producer-consumer example never terminates. Here records never straddle
// the wrap point and every position read from the file is validated.
//
// Small messages take more room than in the original: a 256-byte ring holds
// eight 4-byte messages where the original's 4-byte length prefix let it
// hold about thirty (the header carries the stamp and writer pid that
// validation and crash recovery need); size tiny rings accordingly. A
// 1024-byte message does not fit a 1024-byte ring, as before. New files get
// mode 0600 (the original used 0644 minus umask).
//
// # Build design
//
// The package needs cgo and a C11 compiler, and nothing else: no prebuilt
// library, no Bazel. cgo compiles every .c file in the package directory, so
// the C core is present here as generated files: mrb.h (a copy of
// core/include/mrb/mrb.h) and core_amalgamation.c (every core source of
// core/sources.bzl as one translation unit). gen_core.go writes them
// (`go generate`); never edit them by hand.
//
// Why generated files in the package: a .c file here that #includes
// ../../core/src/x.c builds, but Go's build cache hashes only the files in
// the package directory, so an edit to the included file leaves a stale
// cached build; symlinks would avoid that but Go module zips drop them, so
// `go get` would fail. Files in the package directory are hashed by the
// cache and travel in the module zip.
//
// Why they cannot drift from core/: `go run gen_core.go -check` fails when
// they differ from what core/ gives; it runs as a Bazel test
// (//bindings/go:generated_check_test), and TestCoreGenerated runs it from
// `go test` whenever ../../core exists. TestModuleZipBuild publishes this
// directory as a module zip in a file:// module proxy and builds and runs a
// consumer module from it, as a module proxy user would.
package ringbuffer
