from mmap_ringbuffer import RingBuffer


def test_roundtrip(rb: RingBuffer) -> None:
    rb.write(b"abc")
    assert rb.read() == b"abc"
