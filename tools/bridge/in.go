// SPDX-License-Identifier: MIT

package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	ringbuffer "github.com/mmap-ringbuffer/mmap_ringbuffer/bindings/go"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

type inConfig struct {
	common
	state     string // file holding the last stream sequence written
	batch     int
	seqPrefix bool // prefix each ring message with its stream sequence
	create    int  // create the ring with this size if missing (0: it must exist)
}

func mainIn(ctx context.Context, args []string, logger *log.Logger) error {
	var cfg inConfig
	fs := flag.NewFlagSet("in", flag.ContinueOnError)
	cfg.register(fs)
	fs.StringVar(&cfg.state, "state", "", "file keeping the last stream sequence written (default RING.STREAM.in)")
	fs.IntVar(&cfg.batch, "batch", 1024, "messages the consumer pulls ahead")
	fs.BoolVar(&cfg.seqPrefix, "seq-prefix", false,
		"prefix each ring message with its stream sequence (8 bytes, big-endian), for consumer-side deduplication")
	fs.IntVar(&cfg.create, "create", 0, "create the ring with this size (bytes) if it does not exist")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cfg.check(fs, true); err != nil {
		return err
	}
	if cfg.state == "" {
		cfg.state = cfg.ring + "." + cfg.stream + ".in"
	}
	var ring *ringbuffer.RingBuffer
	var err error
	if cfg.create > 0 {
		ring, err = ringbuffer.NewRingBuffer(cfg.ring, cfg.create, false)
	} else {
		ring, err = ringbuffer.OpenRingBuffer(cfg.ring)
	}
	if err != nil {
		return err
	}
	defer ring.Close()
	nc, err := connect(ctx, cfg.server, "mrb-bridge in "+cfg.ring, logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	b, err := newInBridge(ring, nc, cfg, logger)
	if err != nil {
		return err
	}
	defer b.stateFile.Close()
	return b.run(ctx)
}

// inBridge forwards JetStream → ring. Its durable position is the last
// stream sequence written into the ring, in a state file it updates after
// each write (a 20-digit number written by one pwrite(2), so a crash leaves
// the old or the new value). It reads with an ordered consumer from the
// next sequence: JetStream delivers in stream order, which a durable
// consumer's redeliveries after a crash would not. A message whose
// sequence is not above the last written is skipped: the dedup rule.
type inBridge struct {
	ring      *ringbuffer.RingBuffer
	js        jetstream.JetStream
	cfg       inConfig
	logger    *log.Logger
	stateFile *os.File
	last      uint64 // last stream sequence written into the ring

	written  atomic.Uint64
	skipped  atomic.Uint64
	lastSeen atomic.Uint64 // b.last, for report
}

func newInBridge(ring *ringbuffer.RingBuffer, nc *nats.Conn, cfg inConfig, logger *log.Logger) (*inBridge, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(cfg.state, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	b := &inBridge{ring: ring, js: js, cfg: cfg, logger: logger, stateFile: f}
	raw := make([]byte, 64)
	n, err := f.ReadAt(raw, 0)
	if err != nil && n == 0 && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, err
	}
	if text := strings.TrimSpace(string(raw[:n])); text != "" {
		b.last, err = strconv.ParseUint(text, 10, 64)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: not a sequence number: %q", cfg.state, text)
		}
	}
	b.lastSeen.Store(b.last)
	return b, nil
}

// saveState records seq as the last written.
func (b *inBridge) saveState(seq uint64) error {
	_, err := b.stateFile.WriteAt([]byte(fmt.Sprintf("%020d\n", seq)), 0)
	return err
}

// consumer makes an ordered consumer starting after b.last, retrying while
// the server or the stream is away.
func (b *inBridge) consumer(ctx context.Context) (jetstream.Consumer, error) {
	for attempt := 0; ; attempt++ {
		cfg := jetstream.OrderedConsumerConfig{
			FilterSubjects:    []string{b.cfg.subject},
			DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:       b.last + 1,
			InactiveThreshold: 30 * time.Second,
		}
		c, err := b.js.OrderedConsumer(ctx, b.cfg.stream, cfg)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if attempt%50 == 0 {
			b.logger.Printf("consumer on stream %s: %v (retrying)", b.cfg.stream, err)
		}
		if err := backoff(ctx, 200*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

func (b *inBridge) run(ctx context.Context) error {
	if b.cfg.stats > 0 {
		go b.report(ctx)
	}
	for ctx.Err() == nil {
		cons, err := b.consumer(ctx)
		if err != nil {
			break
		}
		b.logger.Printf("reading stream %s, subject %s, after sequence %d", b.cfg.stream, b.cfg.subject, b.last)
		it, err := cons.Messages(jetstream.PullMaxMessages(b.cfg.batch))
		if err != nil {
			if backoff(ctx, 100*time.Millisecond) != nil {
				break
			}
			continue
		}
		err = b.drain(ctx, it)
		it.Stop()
		if ctx.Err() != nil {
			break
		}
		if !errors.Is(err, errRestart) {
			return err
		}
		if backoff(ctx, 100*time.Millisecond) != nil {
			break
		}
	}
	return nil
}

// errRestart: the consumer failed; make a new one from the last written.
var errRestart = errors.New("restart the consumer")

// drain writes what the consumer delivers until it fails (errRestart), the
// ring fails, or ctx ends. Each message is written, then its sequence is
// recorded: a crash between the two is the one window in which a message
// can reach the ring twice (docs/BRIDGE.md).
func (b *inBridge) drain(ctx context.Context, it jetstream.MessagesContext) error {
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() == nil {
				b.logger.Printf("consumer: %v (starting again after sequence %d)", err, b.last)
			}
			return errRestart
		}
		md, err := m.Metadata()
		if err != nil {
			continue
		}
		seq := md.Sequence.Stream
		if seq <= b.last {
			b.skipped.Add(1) // written before: the dedup rule
			continue
		}
		data := m.Data()
		if b.cfg.seqPrefix {
			framed := make([]byte, 8+len(data))
			binary.BigEndian.PutUint64(framed, seq)
			copy(framed[8:], data)
			data = framed
		}
		if err := b.write(ctx, data); err != nil {
			return err
		}
		b.written.Add(1)
		if err := b.saveState(seq); err != nil {
			return err
		}
		b.last = seq
		b.lastSeen.Store(seq)
	}
}

// write writes one message, waiting for room while the ring is full
// (backpressure: the consumer's buffer fills, nothing more is pulled,
// nothing is lost).
func (b *inBridge) write(ctx context.Context, msg []byte) error {
	_, err := b.ring.WriteMsg(msg)
	if errors.Is(err, ringbuffer.ErrBufferFull) {
		err = b.ring.WriteMsgContext(ctx, msg)
	}
	return err
}

func (b *inBridge) report(ctx context.Context) {
	t := time.NewTicker(b.cfg.stats)
	defer t.Stop()
	last, lastAt := b.written.Load(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n := b.written.Load()
			lag := ""
			if info, err := b.js.Stream(ctx, b.cfg.stream); err == nil {
				if si, err := info.Info(ctx); err == nil {
					lag = fmt.Sprintf(", stream lag %d messages", si.State.LastSeq-b.lastSeen.Load())
				}
			}
			b.logger.Printf("written %d (%.0f msg/s), skipped %d duplicates, last sequence %d%s",
				n, float64(n-last)/now.Sub(lastAt).Seconds(), b.skipped.Load(), b.lastSeen.Load(), lag)
			last, lastAt = n, now
		}
	}
}
