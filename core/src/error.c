/* SPDX-License-Identifier: MIT */
/* glibc: O_NOFOLLOW, posix_fallocate, syscall, strerrordesc_np, ... */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <string.h>

#include "mrb/mrb.h"

const char *mrb_strerror(int code)
{
	switch (code) {
	case MRB_OK:
		return "success";
	case MRB_EFULL:
		return "ring buffer full";
	case MRB_EEMPTY:
		return "ring buffer empty";
	case MRB_EMSGSIZE:
		return "invalid message size (empty or larger than the maximum)";
	case MRB_ECLOSED:
		return "ring buffer handle is closed";
	case MRB_EFORMAT:
		return "not a valid ring buffer file (bad magic, header, or size)";
	case MRB_EVERSION:
		return "unsupported ring buffer format version";
	case MRB_ECONSUMER_BUSY:
		return "another consumer is attached to this ring buffer";
	case MRB_ECORRUPT:
		return "ring buffer data is corrupt (invalid position or record)";
	case MRB_EINVAL:
		return "invalid argument";
	case MRB_ETIMEDOUT:
		return "timed out";
	case MRB_EBUFFER_TOO_SMALL:
		return "destination buffer too small for the next message";
	case MRB_EINTR:
		return "interrupted by a signal";
	case MRB_EEXIST:
		return "file exists (exclusive create, or a ring of another size or read mode)";
	case MRB_ESTALE:
		return "reservation or view is no longer valid";
	case MRB_EFORKED:
		return "ring buffer handle was opened by another process (inherited across fork); "
		       "open the ring again in this process";
	case MRB_ENOSLOT:
		return "no free producer slot: every slot of this ring is owned by a live "
		       "writing handle";
	case MRB_EFOREIGN:
		return "existing ring file is owned by another user or grants more "
		       "permissions than requested; refusing to adopt it";
	case MRB_EINCALLBACK:
		return "cannot close a ring buffer handle from inside its own callback";
	case MRB_ENOSUB:
		return "every subscriber entry of the ring is taken";
	case MRB_ELAPPED:
		return "the subscriber was lapped or evicted: messages were lost";
	case MRB_EMODE:
		return "not available in this ring's read mode (queue or fan-out)";
	case MRB_ENAMEBUSY:
		return "a live subscriber (or worker of the group) uses this name";
	case MRB_ENOWORKER:
		return "every worker slot (or group) of the ring is taken";
	default:
		break;
	}
	if (code < 0 && code > -4096) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
		/* Unlike strerror, never formats into a shared static buffer. */
		const char *text = strerrordesc_np(-code);
		if (text != NULL)
			return text;
#else
		return strerror(-code);
#endif
	}
	return "unknown error";
}
