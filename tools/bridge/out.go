// SPDX-License-Identifier: MIT

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"sync"
	"sync/atomic"
	"time"

	ringbuffer "github.com/mmap-ringbuffer/mmap_ringbuffer/bindings/go"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

type outConfig struct {
	common
	batch      int           // messages per ring read
	inflight   int           // unacknowledged publishes at most
	duplicates time.Duration // the stream's duplicate window, when --stream creates it
	ackTimeout time.Duration
	subscriber string // read as this named durable subscriber ("": as the consumer)
	fromOldest bool
}

func mainOut(ctx context.Context, args []string, logger *log.Logger) error {
	var cfg outConfig
	fs := flag.NewFlagSet("out", flag.ContinueOnError)
	cfg.register(fs)
	fs.IntVar(&cfg.batch, "batch", 256, "messages per ring read")
	fs.IntVar(&cfg.inflight, "max-inflight", 4096, "unacknowledged publishes at most")
	fs.DurationVar(&cfg.duplicates, "duplicate-window", 2*time.Minute,
		"with --stream: the stream's duplicate window when the bridge creates it")
	fs.DurationVar(&cfg.ackTimeout, "ack-timeout", 2*time.Second,
		"a publish not acknowledged this long is sent again")
	fs.StringVar(&cfg.subscriber, "subscriber", "",
		"read a fan-out ring as this named durable subscriber (default: as the ring's consumer)")
	fs.BoolVar(&cfg.fromOldest, "from-oldest", false,
		"with --subscriber, a new subscriber starts at the oldest message in the ring, not the live end")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cfg.check(fs, false); err != nil {
		return err
	}
	var ring *ringbuffer.RingBuffer
	var err error
	if cfg.subscriber != "" {
		var sub *ringbuffer.Subscriber
		sub, err = ringbuffer.Subscribe(cfg.ring, ringbuffer.SubscribeOptions{
			Name: cfg.subscriber, FromOldest: cfg.fromOldest})
		if err == nil {
			ring = sub.RingBuffer
		}
	} else {
		ring, err = ringbuffer.OpenRingBuffer(cfg.ring)
	}
	if err != nil {
		return err
	}
	defer ring.Close()
	nc, err := connect(ctx, cfg.server, "mrb-bridge out "+cfg.ring, logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	o, err := newOutBridge(ctx, ring, nc, cfg, logger)
	if err != nil {
		return err
	}
	return o.run(ctx)
}

// ensureStream creates the stream (file storage, the subject, the
// duplicate window) or updates it, retrying while the server is away.
func ensureStream(ctx context.Context, js jetstream.JetStream, name, subject string, window time.Duration, logger *log.Logger) error {
	for attempt := 0; ; attempt++ {
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:       name,
			Subjects:   []string{subject},
			Storage:    jetstream.FileStorage,
			Duplicates: window,
		})
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if attempt%50 == 0 {
			logger.Printf("stream %s: %v (retrying)", name, err)
		}
		if err := backoff(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// An outEntry is one message read from the ring and published (or about
// to be): position, message, and the publish's future (nil: not sent).
type outEntry struct {
	position uint64
	msg      *nats.Msg
	future   jetstream.PubAckFuture
}

// outBridge forwards ring → JetStream. The reader goroutine reads the ring
// (hold mode) and publishes asynchronously; the acker takes the entries in
// ring order, waits for each acknowledgement and releases the ring through
// the last acknowledged one. A failed publish stops the reader (pubMu) while
// the acker sends everything unacknowledged again, in order, synchronously:
// the stream's duplicate window drops those that had arrived.
type outBridge struct {
	ring     *ringbuffer.RingBuffer
	js       jetstream.JetStream
	cfg      outConfig
	logger   *log.Logger
	idPrefix string

	pubMu   sync.Mutex
	entries chan outEntry

	published atomic.Uint64 // messages acknowledged and released
	resent    atomic.Uint64 // messages sent again after a failure
}

func newOutBridge(ctx context.Context, ring *ringbuffer.RingBuffer, nc *nats.Conn, cfg outConfig, logger *log.Logger) (*outBridge, error) {
	if cfg.batch < 1 || cfg.inflight < cfg.batch {
		return nil, fmt.Errorf("need 1 <= --batch <= --max-inflight")
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(cfg.inflight),
		jetstream.WithPublishAsyncTimeout(cfg.ackTimeout))
	if err != nil {
		return nil, err
	}
	if cfg.stream != "" {
		if err := ensureStream(ctx, js, cfg.stream, cfg.subject, cfg.duplicates, logger); err != nil {
			return nil, err
		}
	}
	if err := ring.Hold(true); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.ring, err)
	}
	st, err := ring.Stats()
	if err != nil {
		return nil, err
	}
	o := &outBridge{
		ring: ring, js: js, cfg: cfg, logger: logger,
		idPrefix: messageIDPrefix(st.Salt, uint64(st.Created.UnixNano())),
		entries:  make(chan outEntry, cfg.inflight),
	}
	logger.Printf("forwarding %s to subject %s, message ids %sPOSITION", cfg.ring, cfg.subject, o.idPrefix)
	return o, nil
}

// messageIDPrefix names the ring: its random salt and creation time. A
// message's id is this prefix and its record's position, which no other
// message of this ring (nor of a ring re-created at the same path) has.
func messageIDPrefix(salt, createdNs uint64) string {
	return fmt.Sprintf("%016x-%d-", salt, createdNs)
}

func (o *outBridge) run(ctx context.Context) error {
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	readErr := make(chan error, 1)
	go func() {
		readErr <- o.read(readCtx)
		close(o.entries)
	}()
	if o.cfg.stats > 0 {
		go o.report(readCtx)
	}
	// The acker runs until the reader has stopped and every entry it
	// published is acknowledged, so a SIGTERM loses nothing (a second
	// signal is not waited for: the unreleased messages stay in the ring).
	ackErr := o.ack(context.WithoutCancel(ctx), ctx)
	stopReading()
	if err := <-readErr; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ackErr
}

// read is the reader goroutine.
func (o *outBridge) read(ctx context.Context) error {
	buf := make([]byte, 1<<20)
	lengths := make([]int, o.cfg.batch)
	positions := make([]uint64, o.cfg.batch)
	for ctx.Err() == nil {
		// Only the reader adds entries, so this much room stays free
		// while it publishes (the acker may need pubMu meanwhile).
		room := cap(o.entries) - len(o.entries)
		if room == 0 {
			if err := backoff(ctx, 100*time.Microsecond); err != nil {
				return err
			}
			continue
		}
		if room > len(lengths) {
			room = len(lengths)
		}
		n, err := o.ring.ReadBatchAtContext(ctx, buf, lengths[:room], positions[:room])
		if errors.Is(err, ringbuffer.ErrBufferTooSmall) {
			buf = make([]byte, lengths[0])
			continue
		}
		if err != nil {
			return err
		}
		o.pubMu.Lock()
		off := 0
		for i := 0; i < n; i++ {
			data := make([]byte, lengths[i])
			copy(data, buf[off:off+lengths[i]])
			off += lengths[i]
			e := outEntry{position: positions[i], msg: o.message(positions[i], data)}
			e.future, err = o.js.PublishMsgAsync(e.msg)
			if err != nil {
				e.future = nil // sent again by the acker
			}
			o.entries <- e
		}
		o.pubMu.Unlock()
	}
	return ctx.Err()
}

func (o *outBridge) message(position uint64, data []byte) *nats.Msg {
	m := nats.NewMsg(o.cfg.subject)
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, o.idPrefix+fmt.Sprint(position))
	return m
}

// ack is the acker: it returns when the reader has closed o.entries and
// all of them are released, or when hard ends (a failed re-send then stops
// it; the unreleased messages stay in the ring).
func (o *outBridge) ack(ctx, soft context.Context) error {
	// Releases are batched: the acknowledged position is released before
	// the acker would block, and at least every 256 messages.
	var toRelease uint64
	unreleased := 0
	flush := func() error {
		if unreleased == 0 {
			return nil
		}
		unreleased = 0
		if err := o.ring.ReleaseThrough(toRelease); err != nil {
			return fmt.Errorf("release through %d: %w", toRelease, err)
		}
		return nil
	}
	for {
		var e outEntry
		var ok bool
		select {
		case e, ok = <-o.entries:
		default:
			if err := flush(); err != nil {
				return err
			}
			select {
			case e, ok = <-o.entries:
			case <-soft.Done():
				e, ok = <-o.entries // the reader stops and closes
			}
		}
		if !ok {
			return flush()
		}
		if e.future != nil {
			acked := false
			select {
			case <-e.future.Ok():
				acked = true
			case <-e.future.Err():
			default:
				if err := flush(); err != nil {
					return err
				}
				select {
				case <-e.future.Ok():
					acked = true
				case <-e.future.Err():
				}
			}
			if acked {
				o.published.Add(1)
				toRelease = e.position
				if unreleased++; unreleased >= 256 {
					if err := flush(); err != nil {
						return err
					}
				}
				continue
			}
		}
		if err := flush(); err != nil {
			return err
		}
		// A failure: stop the reader, take every entry published after
		// this one, and send them all again in ring order.
		o.pubMu.Lock()
		queue := []outEntry{e}
		for more := true; more; {
			select {
			case next, open := <-o.entries:
				if !open {
					more = false
					break
				}
				queue = append(queue, next)
			default:
				more = false
			}
		}
		err := o.resend(ctx, soft, queue)
		o.pubMu.Unlock()
		if err != nil {
			return err
		}
		toRelease, unreleased = queue[len(queue)-1].position, 1
		if err := flush(); err != nil {
			return err
		}
		o.published.Add(uint64(len(queue)))
	}
}

// resend publishes queue synchronously, one message at a time, retrying
// each until JetStream acknowledges it (reconnection is the client's job).
func (o *outBridge) resend(ctx, soft context.Context, queue []outEntry) error {
	for _, e := range queue {
		for attempt := 0; ; attempt++ {
			callCtx, cancel := context.WithTimeout(ctx, o.cfg.ackTimeout)
			msg := o.message(e.position, e.msg.Data)
			_, err := o.js.PublishMsg(callCtx, msg)
			cancel()
			if err == nil {
				o.resent.Add(1)
				break
			}
			if attempt == 0 || attempt%50 == 0 {
				o.logger.Printf("publish %s: %v (retrying)", msg.Header.Get(jetstream.MsgIDHeader), err)
			}
			if soft.Err() != nil && attempt >= 50 {
				return fmt.Errorf("stopping with %d messages unacknowledged (kept in the ring): %w", len(queue), err)
			}
			if err := backoff(ctx, 100*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

// report logs the rate and the ring's backlog (lag) now and then.
func (o *outBridge) report(ctx context.Context) {
	t := time.NewTicker(o.cfg.stats)
	defer t.Stop()
	last, lastAt := o.published.Load(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n := o.published.Load()
			st, err := o.ring.Stats()
			if err != nil {
				continue
			}
			o.logger.Printf("published %d (%.0f msg/s), re-sent %d, ring backlog %d messages / %d bytes",
				n, float64(n-last)/now.Sub(lastAt).Seconds(), o.resent.Load(),
				st.MessagesWritten-st.MessagesRead, st.UsedBytes)
			last, lastAt = n, now
		}
	}
}
