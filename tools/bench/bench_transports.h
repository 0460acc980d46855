/* SPDX-License-Identifier: MIT */
/* Every transport the matrix measures. */
#ifndef MRB_TOOLS_BENCH_BENCH_TRANSPORTS_H
#define MRB_TOOLS_BENCH_BENCH_TRANSPORTS_H

#include "bench_cell.h"

/* Baselines (one producer). Streams: write() per message, the consumer reads
 * up to 256 KiB per read() and splits the byte stream into messages. */
extern const struct bench_transport bench_pipe;
extern const struct bench_transport bench_unix_stream; /* AF_UNIX SOCK_STREAM */
/* The minimal SPSC ring (minimal_ring.h). Per message: the consumer copies
 * each message out, like mrb_read. Per 16 KiB: verified in place, like
 * mrb_read_batch. */
extern const struct bench_transport bench_minimal_per_message;
extern const struct bench_transport bench_minimal_per_16k;

/* mrb: producers mrb_write; consumer mrb_read (copy) or mrb_read_batch (in
 * place); or producers mrb_write_batch (16 KiB per batch) and read_batch. */
extern const struct bench_transport bench_mrb_read;
extern const struct bench_transport bench_mrb_read_batch;
extern const struct bench_transport bench_mrb_write_batch;

/* Bytes the batched policies move between publications. */
#define BENCH_BATCH_BYTES 16384u

#endif /* MRB_TOOLS_BENCH_BENCH_TRANSPORTS_H */
